/**
 * What another process costs, read from Linux's `/proc`: its resident set now and at its peak
 * (`VmRSS`, `VmHWM`, the kernel's own high-water mark, so a short spike between two samples still
 * counts), its CPU time, and the machine's busy share. The worker runs in a process of its own, so
 * these are its figures alone, not the benchmark's.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';

/** Clock ticks per second of `/proc/<pid>/stat` times: 100 on every Linux Node runs on in practice. */
const TICKS_PER_SECOND = 100;

/** Resident set sizes of a process, in MiB. */
export interface Memory {
  readonly rssMb: number;
  /** The largest resident set the process has had since it started. */
  readonly peakRssMb: number;
}

/** `VmRSS` and `VmHWM` of `pid`. */
export function memoryOf(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!match) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(match[1]);
  };
  return { rssMb: round(kb('VmRSS') / 1024), peakRssMb: round(kb('VmHWM') / 1024) };
}

interface Stat {
  readonly pid: number;
  readonly command: string;
  readonly parent: number;
  /** User + system CPU time, in ms, its own and that of its children it has waited for. */
  readonly cpuMs: number;
}

function statOf(pid: number): Stat {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  const command = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime + stime, and cutime + cstime: a PostgreSQL backend or autovacuum worker that exits
  // is reaped by the postmaster, whose children's time then holds it, so it is not lost.
  const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
  return { pid, command, parent: Number(fields[1]), cpuMs: (ticks * 1000) / TICKS_PER_SECOND };
}

/** Resets `VmHWM` to the current resident set (`clear_refs` 5), so the next peak is one of what follows. */
export function resetPeakRss(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

/** CPU time (user + system, with its reaped children's) `pid` has used so far, in ms. */
export function cpuMsOf(pid: number): number {
  return statOf(pid).cpuMs;
}

/**
 * CPU time so far (ms) of the live descendants of `root`, summed by command name: the embedded
 * PostgreSQL's processes (`postgres`, each connection's backend among them) and the Temporal dev
 * server (`temporal`). A process that exited meanwhile counts in its parent's children's time
 * (a backend's or an autovacuum worker's in the postmaster's): at 100,000 contacts, without it,
 * a third of a core of the machine's busy time during the export belonged to no part.
 */
export function descendantCpuMs(root: number): Map<string, number> {
  const stats: Stat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      stats.push(statOf(Number(name)));
    } catch {
      // Gone since the listing.
    }
  }
  const children = new Map<number, Stat[]>();
  for (const stat of stats) children.set(stat.parent, [...(children.get(stat.parent) ?? []), stat]);
  const sums = new Map<string, number>();
  const queue = [...(children.get(root) ?? [])];
  for (let stat = queue.shift(); stat; stat = queue.shift()) {
    sums.set(stat.command, (sums.get(stat.command) ?? 0) + stat.cpuMs);
    queue.push(...(children.get(stat.pid) ?? []));
  }
  return sums;
}

/** The machine's CPU time so far (ms summed over every core): busy and in total. */
export interface MachineCpu {
  readonly busyMs: number;
  readonly totalMs: number;
}

/** Busy and total CPU time of the whole machine, from the first line of `/proc/stat`. */
export function machineCpu(): MachineCpu {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  const busy = (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
  const total = busy + (idle ?? 0) + (iowait ?? 0);
  return { busyMs: (busy * 1000) / TICKS_PER_SECOND, totalMs: (total * 1000) / TICKS_PER_SECOND };
}

/** Samples a process's resident set every `everyMs` until stopped: the highest sample, as a cross-check of `VmHWM`. */
export class RssSampler {
  readonly #pid: number;
  readonly #timer: NodeJS.Timeout;
  #highestMb = 0;

  constructor(pid: number, everyMs = 100) {
    this.#pid = pid;
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), everyMs);
  }

  /** Stops sampling; returns the highest `VmRSS` seen and the kernel's peak. */
  stop(): { sampledPeakMb: number; peakRssMb: number; rssMb: number } {
    clearInterval(this.#timer);
    const memory = memoryOf(this.#pid);
    return { sampledPeakMb: Math.max(this.#highestMb, memory.rssMb), peakRssMb: memory.peakRssMb, rssMb: memory.rssMb };
  }

  #sample(): void {
    try {
      this.#highestMb = Math.max(this.#highestMb, memoryOf(this.#pid).rssMb);
    } catch {
      // The process is gone; `stop()` reports what was seen.
    }
  }
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
