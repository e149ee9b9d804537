// Resident memory of a process and all its descendants (miniworkers), in MiB.
//   rssTree: each process's RSS, summed (what `ps` shows). Pages several of them share, such as the node
//            binary each one maps, are counted once per process.
//   residentTree: the distinct physical pages the group holds, each counted once: what the group really
//            keeps in memory. Read from /proc/PID/pagemap, which shows page frame numbers only to root;
//            elsewhere it is undefined.
import { execFile } from 'node:child_process';
import { open, readFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);
const PAGE = 4096;

export async function treePids(pid: number): Promise<{ pids: number[]; rssKiB: Map<number, number> }> {
  const { stdout } = await run('ps', ['-e', '-o', 'pid=,ppid=,rss=']);
  const rows = stdout
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number) as [number, number, number]);
  const keep = new Set([pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [p, pp] of rows) {
      if (keep.has(pp) && !keep.has(p)) {
        keep.add(p);
        grew = true;
      }
    }
  }
  return { pids: [...keep], rssKiB: new Map(rows.filter(([p]) => keep.has(p)).map(([p, , rss]) => [p, rss])) };
}

export async function rssTree(pid: number | undefined): Promise<number> {
  if (!pid) return 0;
  const { rssKiB } = await treePids(pid);
  return [...rssKiB.values()].reduce((a, b) => a + b, 0) / 1024;
}

export async function residentTree(pid: number | undefined): Promise<number | undefined> {
  if (!pid) return 0;
  const frames = new Set<number>();
  for (const p of (await treePids(pid)).pids) {
    let maps: string;
    try {
      maps = await readFile(`/proc/${p}/maps`, 'utf8');
    } catch {
      continue; // the process ended meanwhile
    }
    const pagemap = await open(`/proc/${p}/pagemap`, 'r').catch(() => null);
    if (!pagemap) continue;
    try {
      for (const line of maps.split('\n')) {
        const m = /^([0-9a-f]+)-([0-9a-f]+)/.exec(line);
        if (!m) continue;
        const [from, to] = [parseInt(m[1]!, 16) / PAGE, parseInt(m[2]!, 16) / PAGE];
        if (line.endsWith('[vsyscall]')) continue;
        // One 8-byte entry per page: bit 63 present, bits 0-54 the frame number.
        const CHUNK = 8192;
        for (let at = from; at < to; at += CHUNK) {
          const n = Math.min(CHUNK, to - at);
          const buf = Buffer.alloc(n * 8);
          const { bytesRead } = await pagemap.read(buf, 0, buf.length, at * 8);
          for (let i = 0; i + 8 <= bytesRead; i += 8) {
            const e = buf.readBigUInt64LE(i);
            if (!(e >> 63n)) continue;
            const frame = Number(e & ((1n << 55n) - 1n));
            if (frame === 0) return undefined; // frame numbers hidden: not root
            frames.add(frame);
          }
        }
      }
    } finally {
      await pagemap.close();
    }
  }
  return (frames.size * PAGE) / (1024 * 1024);
}
