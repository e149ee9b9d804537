// CPU time of processes, read from /proc/PID/stat: what the benchmarks charge to each part of a path.
import { readFile, readdir } from 'node:fs/promises';

const TICK_MS = 1000 / 100; // USER_HZ

// /proc/PID/stat after the command name (which may hold spaces): state, ppid, ... utime, stime, ...
export async function statFields(pid: number): Promise<string[]> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

export const cpuMs = async (pid: number): Promise<number> => {
  const f = await statFields(pid);
  return (Number(f[11] ?? 0) + Number(f[12] ?? 0)) * TICK_MS;
};

export const parentOf = async (pid: number): Promise<number> => Number((await statFields(pid))[1] ?? 0);

export async function pidsNamed(pattern: RegExp): Promise<number[]> {
  const out: number[] = [];
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const cmd = await readFile(`/proc/${d}/cmdline`, 'utf8').catch(() => '');
    if (pattern.test(cmd.split('\0')[0] ?? '')) out.push(Number(d));
  }
  return out;
}

// CPU ms of a set of processes together (those that are gone count 0).
export const cpuOf = async (pids: number[]): Promise<number> => (await Promise.all(pids.map(cpuMs))).reduce((a, b) => a + b, 0);
