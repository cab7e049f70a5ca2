/**
 * `npm run bench -- latency`: commit-to-remote-write latency of the outbox + relay + Temporal path
 * against an in-process baseline that runs the same reader, processor and writer, at stepped
 * offered rates. Prints one JSON object; progress goes to stderr.
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { localContactIds } from '../../examples/demo/demo-setup';
import { DirectPipeline } from './direct';
import { Cleanups, type BenchEnvironment, startEnvironment } from './environment';
import { type StepReport, sustainedRate } from './measure';
import { type PhasePlan, runPhase } from './phases';
import { ChangeStream } from './stream';

const CONTACTS = 200;
const INTEGRATION = 'bench';
const CONNECTOR = 'contact';
const DIRECT_CONCURRENCY = 8;
/** Six steps of six seconds per phase keep the whole run under about three minutes on two cores. */
const PLAN: PhasePlan = { rates: [5, 10, 20, 40, 80, 160], stepMs: 6_000, drainMs: 15_000, settleMs: 500 };
/** Longest wait for the last follow-up passes of a phase to finish. */
const QUIET_TIMEOUT_MS = 15_000;

/** Latency percentiles at the lowest offered rate. */
interface Percentiles {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
}

/** What the benchmark prints. */
export interface LatencyResult {
  readonly bench: 'latency';
  readonly machine: { readonly cpus: number; readonly node: string };
  readonly config: PhasePlan & { readonly contacts: number; readonly directConcurrency: number };
  readonly steps: { readonly temporal: StepReport[]; readonly direct: StepReport[] };
  readonly temporal: Percentiles | null;
  readonly direct: Percentiles | null;
  readonly sustained: { readonly temporal: number | null; readonly direct: number | null };
  readonly ratio: { readonly p50: number | null; readonly p95: number | null; readonly sustained: number | null };
  readonly stackMs: number;
  readonly totalMs: number;
}

/** Runs the latency benchmark and returns its result; everything it started is stopped. */
export async function runLatencyBench(log: (line: string) => void): Promise<LatencyResult> {
  const began = performance.now();
  const cleanups = new Cleanups();
  let result: Omit<LatencyResult, 'totalMs'>;
  try {
    const env = await startEnvironment({ contacts: CONTACTS, integrationName: INTEGRATION, log }, cleanups);
    const remoteIds = await exportAll(env, log);
    const stream = new ChangeStream({ db: env.appDb, contactIds: [...remoteIds.keys()], integration: INTEGRATION });

    env.startRelay();
    const settle = () => waitQuiet(env, log);
    const temporal = await runPhase({
      plan: PLAN,
      stream,
      remoteIds,
      log,
      delivery: { name: 'temporal', outbox: true, observe: (t) => env.observeWrites(t && ((c) => t.written(c))), settle },
    });
    await settle();

    const integration = env.integration;
    const states = new Map((await env.client.syncStates({ integration: integration.name, connector: CONNECTOR })).map((s) => [s.key, s]));
    const pipeline = new DirectPipeline({
      runtime: env.runtime,
      integration,
      connector: CONNECTOR,
      states,
      concurrency: DIRECT_CONCURRENCY,
      log,
    });
    pipeline.start();
    cleanups.add('stop the direct pipeline', () => pipeline.stop());
    const direct = await runPhase({
      plan: PLAN,
      stream,
      remoteIds,
      log,
      delivery: {
        name: 'direct',
        outbox: false,
        afterCommit: (change) => pipeline.push(change.seq, change.id),
        observe: (t) => env.observeWrites(t && ((c) => t.written(c))),
      },
    });

    const sustained = { temporal: sustainedRate(temporal), direct: sustainedRate(direct) };
    const low = { temporal: percentiles(temporal[0]), direct: percentiles(direct[0]) };
    result = {
      bench: 'latency',
      machine: { cpus: os.cpus().length, node: process.version },
      config: { ...PLAN, contacts: CONTACTS, directConcurrency: DIRECT_CONCURRENCY },
      steps: { temporal, direct },
      temporal: low.temporal,
      direct: low.direct,
      sustained,
      ratio: {
        p50: ratio(low.temporal?.p50, low.direct?.p50),
        p95: ratio(low.temporal?.p95, low.direct?.p95),
        sustained: ratio(sustained.temporal, sustained.direct),
      },
      stackMs: env.stackMs,
    };
  } finally {
    log('cleaning up');
    await cleanups.run(log);
  }
  // Total includes starting and stopping the stack: it is what a run of the benchmark costs.
  return { ...result, totalMs: Math.round(performance.now() - began) };
}

/**
 * Exports every contact once, so each benchmark change is an update of a known remote record,
 * and returns local id -> remote id.
 */
async function exportAll(env: BenchEnvironment, log: (line: string) => void): Promise<Map<number, string>> {
  const began = performance.now();
  const ids = await localContactIds(env.appDb);
  const scheduled = await env.client.scheduleExports({ integration: INTEGRATION, connector: CONNECTOR, ids });
  const outcomes = await Promise.all(scheduled.map((s) => env.client.waitForExport(s)));
  const failed = outcomes.filter((o) => !o.ok);
  if (failed.length > 0)
    throw new Error(`initial export failed for ${failed.length} contacts: ${failed[0]?.ok === false ? failed[0].error : ''}`);
  const states = await env.client.syncStates({ integration: env.integration.name, connector: CONNECTOR });
  const remoteIds = new Map(states.flatMap((s) => (s.remoteId ? [[Number(s.key), s.remoteId] as const] : [])));
  if (remoteIds.size !== ids.length) throw new Error(`initial export left ${ids.length - remoteIds.size} contacts without a remote id`);
  log(`exported ${ids.length} contacts in ${Math.round(performance.now() - began)} ms`);
  await waitQuiet(env, log);
  return remoteIds;
}

/** Waits (bounded) until no export workflow of the integration runs, so phases do not overlap. */
async function waitQuiet(env: BenchEnvironment, log: (line: string) => void): Promise<void> {
  const deadline = performance.now() + QUIET_TIMEOUT_MS;
  for (;;) {
    const running = await env.runningExports();
    if (running === 0) return;
    if (performance.now() > deadline) {
      log(`still ${running} export workflows running after ${QUIET_TIMEOUT_MS} ms; going on`);
      return;
    }
    await sleep(200);
  }
}

function percentiles(step: StepReport | undefined): Percentiles | null {
  return step ? { p50: step.p50, p95: step.p95, p99: step.p99 } : null;
}

function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a == null || b == null || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null;
  return Math.round((a / b) * 100) / 100;
}
