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
import type { PassBreakdown } from './breakdown';
import { type StepReport, sustainedRate, sustainedWithin } from './measure';
import { type PhasePlan, type PhaseStep, runPhase } from './phases';
import { ChangeStream } from './stream';

const CONTACTS = 200;
const INTEGRATION = 'bench';
const CONNECTOR = 'contact';
const DIRECT_CONCURRENCY = 8;
/** Six steps of six seconds per phase, up to 400 changes/s, keep the whole run to a few minutes on two cores. */
const PLAN: PhasePlan = { rates: [5, 25, 50, 100, 200, 400], stepMs: 6_000, drainMs: 15_000, settleMs: 500 };
/** The rate whose passes are broken down (quiet enough that passes do not overlap). */
const BREAKDOWN_RATE = 5;
/** Histories read per step (all of a step's runs at high rates, where batching makes them few). */
const MAX_RUNS_PER_STEP = 200;
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
  readonly steps: { readonly temporal: PhaseStep[]; readonly direct: PhaseStep[] };
  readonly temporal: Percentiles | null;
  readonly direct: Percentiles | null;
  /** Where the time of a pass goes, at `BREAKDOWN_RATE` changes/s. */
  readonly breakdown: PassBreakdown | null;
  /** Per offered rate: the Temporal path against the direct loop. */
  readonly byRate: ReadonlyArray<{
    readonly offered: number;
    readonly temporal: Pick<StepReport, 'deliveredPerSec' | 'writesPerSec' | 'p50' | 'p95' | 'p99' | 'drainedMs' | 'undelivered'> & {
      readonly historyEventsPerChange: number | null;
    };
    readonly direct: Pick<StepReport, 'deliveredPerSec' | 'writesPerSec' | 'p50' | 'p95' | 'p99'> | null;
    readonly ratio: { readonly p50: number | null; readonly delivered: number | null };
  }>;
  readonly sustained: {
    readonly temporal: number | null;
    readonly direct: number | null;
    /** The highest rate with everything delivered and p95 within 1 s (the target: 100/s). */
    readonly temporalP95Within1s: number | null;
    readonly directP95Within1s: number | null;
  };
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
    env.timer.timeQueries();
    cleanups.add('stop timing queries', async () => env.timer.restore());
    let breakdown: PassBreakdown | null = null;
    const remoteIds = await exportAll(env, log);
    const stream = new ChangeStream({ db: env.appDb, contactIds: [...remoteIds.keys()], integration: INTEGRATION });

    env.startRelay();
    const settle = () => waitQuiet(env, log);
    const temporal = await runPhase({
      plan: PLAN,
      stream,
      remoteIds,
      log,
      delivery: {
        name: 'temporal',
        outbox: true,
        afterCommit: (change) => env.timer.committed(change.id, change.at),
        observe: (t) => env.observeWrites(t && ((c) => t.written(c))),
        settle,
        beforeStep: (rate) => void (env.timer.active = rate === BREAKDOWN_RATE),
        afterStep: async (report, began) => {
          env.timer.active = false;
          const query = `TidesyncIntegration = '${INTEGRATION}' AND StartTime >= '${began.toISOString()}'`;
          const events = await historyEvents(env, query);
          const delivered = report.changes - report.undelivered;
          const extra: Record<string, unknown> = {
            runs: events.runs,
            historyEvents: events.events,
            historyEventsPerChange: delivered > 0 ? Math.round((events.events / delivered) * 100) / 100 : null,
          };
          if (report.offered === BREAKDOWN_RATE) {
            breakdown = await env.timer.breakdown(env.temporal, query, { maxRuns: MAX_RUNS_PER_STEP, changes: delivered });
          }
          return extra;
        },
      },
    });
    env.timer.restore();
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

    const sustained = {
      temporal: sustainedRate(temporal),
      direct: sustainedRate(direct),
      temporalP95Within1s: sustainedWithin(temporal, 1000),
      directP95Within1s: sustainedWithin(direct, 1000),
    };
    const byRate = temporal.map((t) => {
      const d = direct.find((x) => x.offered === t.offered);
      return {
        offered: t.offered,
        temporal: {
          deliveredPerSec: t.deliveredPerSec,
          writesPerSec: t.writesPerSec,
          p50: t.p50,
          p95: t.p95,
          p99: t.p99,
          drainedMs: t.drainedMs,
          undelivered: t.undelivered,
          historyEventsPerChange: (t['historyEventsPerChange'] as number | null | undefined) ?? null,
        },
        direct: d ? { deliveredPerSec: d.deliveredPerSec, writesPerSec: d.writesPerSec, p50: d.p50, p95: d.p95, p99: d.p99 } : null,
        ratio: { p50: ratio(t.p50, d?.p50), delivered: ratio(t.deliveredPerSec, d?.deliveredPerSec) },
      };
    });
    const low = { temporal: percentiles(temporal[0]), direct: percentiles(direct[0]) };
    result = {
      bench: 'latency',
      machine: { cpus: os.cpus().length, node: process.version },
      config: { ...PLAN, contacts: CONTACTS, directConcurrency: DIRECT_CONCURRENCY },
      steps: { temporal, direct },
      temporal: low.temporal,
      direct: low.direct,
      breakdown,
      byRate,
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

/** Runs the visibility query lists (at most `MAX_RUNS_PER_STEP`) and the history events they hold. */
async function historyEvents(env: BenchEnvironment, query: string): Promise<{ runs: number; events: number }> {
  let runs = 0;
  let events = 0;
  for await (const run of env.temporal.workflow.list({ query })) {
    if (runs >= MAX_RUNS_PER_STEP) break;
    runs += 1;
    events += (await env.temporal.workflow.getHandle(run.workflowId, run.runId).fetchHistory()).events?.length ?? 0;
  }
  return { runs, events };
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
