/**
 * Where the CPU went during one measured window: the demo CRM's process (its own
 * `process.cpuUsage()`), the worker's process (from `/proc`), this benchmark's process (the direct
 * loop runs here), the embedded PostgreSQL and Temporal server, and the whole machine, whose busy
 * time also holds whatever else shares it.
 */
import { performance } from 'node:perf_hooks';
import type { RemoteCrm } from '../crm/remote';
import { cpuMsOf, descendantCpuMs, machineCpu } from './proc';

/** One process's CPU time in a window. */
export interface ProcessCpu {
  readonly cpuMs: number;
  /** CPU time over wall time: 1 is one core kept busy the whole window. */
  readonly cores: number;
  /** Its part of the machine's busy time in the window. */
  readonly shareOfBusy: number;
}

/** The CPU figures of a window. */
export interface CpuWindow {
  readonly wallMs: number;
  readonly remote: ProcessCpu;
  readonly worker: ProcessCpu | null;
  readonly bench: ProcessCpu;
  /** The embedded PostgreSQL's processes and the Temporal dev server (children of this process; zero when configured elsewhere). */
  readonly postgres: ProcessCpu;
  readonly temporal: ProcessCpu;
  /** Every process of the machine: busy cores on average, and the busy share of all cores. */
  readonly machine: { readonly cores: number; readonly busyShare: number };
}

/** Starts a window; `close()` ends it and reports. */
export async function openCpuWindow(remote: RemoteCrm, workerPid?: number): Promise<{ close(): Promise<CpuWindow> }> {
  const remoteCpu = async () => {
    const { cpu } = await remote.sample();
    return (cpu.user + cpu.system) / 1000;
  };
  const benchCpu = () => {
    const cpu = process.cpuUsage();
    return (cpu.user + cpu.system) / 1000;
  };
  const start = {
    at: performance.now(),
    remote: await remoteCpu(),
    worker: workerPid === undefined ? 0 : cpuMsOf(workerPid),
    bench: benchCpu(),
    stack: descendantCpuMs(process.pid),
    machine: machineCpu(),
  };
  return {
    close: async () => {
      const wallMs = performance.now() - start.at;
      const machine = machineCpu();
      const stack = descendantCpuMs(process.pid);
      const grown = (command: string) => (stack.get(command) ?? 0) - (start.stack.get(command) ?? 0);
      const busyMs = machine.busyMs - start.machine.busyMs;
      const of = (cpuMs: number): ProcessCpu => ({
        cpuMs: Math.round(cpuMs),
        cores: round(cpuMs / wallMs),
        shareOfBusy: busyMs > 0 ? round(cpuMs / busyMs) : 0,
      });
      return {
        wallMs: Math.round(wallMs),
        remote: of((await remoteCpu()) - start.remote),
        worker: workerPid === undefined ? null : of(cpuMsOf(workerPid) - start.worker),
        bench: of(benchCpu() - start.bench),
        postgres: of(grown('postgres')),
        temporal: of(grown('temporal')),
        machine: {
          cores: round(busyMs / wallMs),
          busyShare: round(busyMs / Math.max(machine.totalMs - start.machine.totalMs, 1)),
        },
      };
    },
  };
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

/** CPU time per entity (microseconds) of each part, and their sum: what an entity costs the machine, however busy it is otherwise. */
export function cpuPerEntity(
  window: CpuWindow,
  entities: number,
): Record<'worker' | 'postgres' | 'temporal' | 'remote' | 'bench' | 'total', number> {
  const us = (cpu: ProcessCpu | null) => Math.round(((cpu?.cpuMs ?? 0) * 1000) / Math.max(entities, 1));
  const parts = {
    worker: us(window.worker),
    postgres: us(window.postgres),
    temporal: us(window.temporal),
    remote: us(window.remote),
    bench: us(window.bench),
  };
  return { ...parts, total: Object.values(parts).reduce((a, b) => a + b, 0) };
}
