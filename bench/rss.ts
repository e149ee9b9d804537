// Resident memory of a process and all its descendants (miniworkers), in MiB, read from ps.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function rssTree(pid: number | undefined): Promise<number> {
  if (!pid) return 0;
  const { stdout } = await run('ps', ['-e', '-o', 'pid=,ppid=,rss=']);
  const rows = stdout
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number) as [number, number, number]);
  const keep = new Set([pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [p, pp] of rows) {
      if (keep.has(pp) && !keep.has(p)) {
        keep.add(p);
        grew = true;
      }
    }
  }
  return rows.filter(([p]) => keep.has(p)).reduce((a, [, , rss]) => a + rss, 0) / 1024;
}
