/**
 * Bulk exports measured from the outside: the worker runs as operators run it (`node
 * bin/tidesync.js worker` in a process of its own, started for one size alone), so its resident
 * set and CPU time are its own. An unmeasured export of the whole table warms it up first; then
 * each round's export of the whole table is timed from the start call to the result; the first
 * remote write is the demo CRM's own record of it.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BulkExportResult, Tidesync } from 'tidesync';
import type { WorkerProcess } from '../chaos/worker-process';
import type { RemoteCrm } from '../crm/remote';
import { type ChainHistory, countChainHistory } from './history';
import { type CpuWindow, openCpuWindow } from './cpu';
import { RssSampler, memoryOf, resetPeakRss } from './proc';

/** How often the benchmark asks for progress and logs it. */
const PROGRESS_EVERY_MS = 2_000;

/** Options of `startBulkWorker`. */
export interface BulkWorkerOptions {
  readonly tidesync: Tidesync;
  readonly remote: RemoteCrm;
  /** Not started yet: started here, stopped by the returned worker's `stop()`. */
  readonly worker: WorkerProcess;
  readonly integration: string;
  readonly connector: string;
  /** `null`: none given, so the export fits its pages to the rows. */
  readonly pageSize: number | null;
  readonly parallelism: number;
  /**
   * Run after a first export of the whole table (not measured, the very path the measured ones
   * take: planning, keyset pages, batches), to empty the remote and the sync states again: the
   * measured exports run on a warm worker, as a long-lived worker is.
   */
  readonly resetAfterWarmup: () => Promise<void>;
  readonly log: (line: string) => void;
}

/** What one measured bulk export cost. */
export interface BulkRunReport {
  readonly result: BulkExportResult;
  readonly ms: number;
  readonly entitiesPerSec: number;
  /** From the start call to the first write the remote applied. */
  readonly firstWriteMs: number | null;
  readonly workerStartMs: number;
  /**
   * The worker's resident set once started, before this export (after the warm-up, its peak
   * reset then), and its peak during this export (`VmHWM`; the 100 ms samples' highest beside it).
   */
  readonly worker: {
    readonly startedRssMb: number;
    readonly idleRssMb: number;
    readonly peakRssMb: number;
    readonly sampledPeakMb: number;
  };
  readonly history: ChainHistory & { readonly per1000: number };
  readonly cpu: CpuWindow;
}

/** A started, warmed-up worker: `measure()` runs one export of the whole table on it. */
export interface BulkWorker {
  measure(): Promise<BulkRunReport>;
  stop(): Promise<void>;
}

/** Starts the worker and runs the warm-up export on it; stop it with `stop()` however it goes. */
export async function startBulkWorker(options: BulkWorkerOptions): Promise<BulkWorker> {
  const { tidesync, remote, worker, log } = options;
  const workerStartMs = await worker.start();
  const pid = worker.pid;
  try {
    if (pid === undefined) throw new Error('the worker exited right after it started');
    const startedRssMb = memoryOf(pid).rssMb;
    const warmup = await tidesync.client.startBulkExport({
      integration: options.integration,
      connector: options.connector,
      ...(options.pageSize !== null ? { pageSize: options.pageSize } : {}),
      parallelism: options.parallelism,
    });
    await tidesync.client.waitForBulkExport(warmup.workflowId);
    await options.resetAfterWarmup();
    const measure = async (): Promise<BulkRunReport> => {
      // A moment for the garbage of what ran before to be collected, so "idle" is the steady state.
      await sleep(1_000);
      resetPeakRss(pid);
      const idleRssMb = memoryOf(pid).rssMb;
      const sampler = new RssSampler(pid);
      const cpu = await openCpuWindow(remote, pid);
      const startedAt = Date.now();
      const began = performance.now();
      const started = await tidesync.client.startBulkExport({
        integration: options.integration,
        connector: options.connector,
        ...(options.pageSize !== null ? { pageSize: options.pageSize } : {}),
        parallelism: options.parallelism,
      });
      const following = followProgress(tidesync, started.workflowId, log);
      let result: BulkExportResult;
      let memory: ReturnType<RssSampler['stop']>;
      try {
        result = await tidesync.client.waitForBulkExport(started.workflowId);
      } finally {
        following.stop();
        memory = sampler.stop();
      }
      const ms = performance.now() - began;
      const usage = await cpu.close();
      const sample = await remote.sample();
      const history = await countChainHistory(tidesync.temporal, started.workflowId, started.runId);
      return {
        result,
        ms: Math.round(ms),
        entitiesPerSec: Math.round((result.done / ms) * 1000),
        firstWriteMs: sample.firstWriteAt === null ? null : sample.firstWriteAt - startedAt,
        workerStartMs,
        worker: { startedRssMb, idleRssMb, peakRssMb: memory.peakRssMb, sampledPeakMb: memory.sampledPeakMb },
        history: { ...history, per1000: Math.round((history.events / Math.max(result.done, 1)) * 1000 * 10) / 10 },
        cpu: usage,
      };
    };
    return { measure, stop: () => worker.stop() };
  } catch (error) {
    await worker.stop();
    throw error;
  }
}

/** Logs the export's progress every few seconds until stopped. */
function followProgress(tidesync: Tidesync, workflowId: string, log: (line: string) => void): { stop(): void } {
  let stopped = false;
  void (async () => {
    while (!stopped) {
      await sleep(PROGRESS_EVERY_MS);
      if (stopped) return;
      try {
        const p = await tidesync.client.bulkProgress(workflowId);
        log(`  bulk ${p.status}: ${p.done}/${p.total} rows, written ${p.written}, ${p.rate}/s, ${p.pages} pages`);
      } catch (error) {
        log(`  bulk progress: ${(error as Error).message}`);
      }
    }
  })();
  return { stop: () => void (stopped = true) };
}
