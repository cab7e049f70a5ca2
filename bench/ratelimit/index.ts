/**
 * `npm run bench -- ratelimit [--rate 20/s] [--max-concurrent 4] [--seconds 10] [--latency-ms 20]`:
 * the rate the integration's requests reach against the limit set, read from the demo CRM's own
 * request log. On the embedded stack (unless DATABASE_URL / TEMPORAL_ADDRESS say otherwise), two
 * `tidesync worker` processes run one workload (a bulk export and per-entity exports of one
 * integration at once) three times: without a limit, with tidesync's limiter at `--rate` and
 * `--max-concurrent`, and without it but with Temporal's `maxTaskQueueActivitiesPerSecond` at
 * `--rate` on the workers' task queue.
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { resolveTemporalSettings, startTidesync } from 'tidesync';
import { createTestDatabase, startTestServers } from 'tidesync/testing';
import { demoDeclarations } from '../../examples/demo';
import { DEMO_TOKEN_ENV } from '../../examples/demo/demo-setup';
import { ensureContactsTable, seedContacts } from '../../examples/demo/local-contacts';
import { DemoCrmServer } from '../../examples/demo/remote/crm-server';
import { Cleanups } from '../latency/environment';
import { openBenchWorkspace, writeWorkflowBundle } from '../support/workspace';
import { type RateLimitBenchOptions, parseRateLimitOptions } from './options';
import { type PhaseContext, type PhaseReport, type PhaseSpec, phaseSize, runPhase } from './phase';
import { type WorkerPair, type WorkerSetup, startWorkers } from './workers';
import { IdRange, PAGE_SIZE, PARALLELISM, runWorkload } from './workload';

const INTEGRATION = 'bench-ratelimit';
/** Unmeasured, after the workers start: bulk pages and per-entity exports, so no phase runs on cold code. */
const WARMUP = { pages: 5, singles: 20 } as const;
/** The unlimited phase is sized for at least this rate (or twice the limit), so it does not end before it shows its own. */
const UNLIMITED_SIZED_FOR = 40;

/** What the benchmark prints. */
export interface RateLimitBenchResult {
  readonly bench: 'ratelimit';
  /** `loadAverage`: the 1-minute load when the run began; above `cpus`, other work shares the machine. */
  readonly machine: { readonly cpus: number; readonly node: string; readonly loadAverage: number };
  readonly config: RateLimitBenchOptions & { readonly workers: 2; readonly pageSize: number; readonly parallelism: number };
  readonly phases: readonly PhaseReport[];
  readonly totals: { readonly requests: number; readonly bulkRequests: number; readonly singleRequests: number };
  readonly summary: {
    readonly limit: number;
    readonly maxConcurrent: number;
    /** Without a limit: the workload's own rate, and over the limit. */
    readonly unlimitedRequestsPerSec: number | null;
    readonly unlimitedOverLimit: number | null;
    /** tidesync's limiter: the steady rate over the limit, the busiest second, whether it stayed within limit + 1 (arrival jitter). */
    readonly reachedOverLimit: number | null;
    readonly busiestSecond: number;
    readonly busiestWithinLimitPlusOne: boolean;
    readonly peakInFlight: number;
    readonly peakWithinMaxConcurrent: boolean;
    /** Temporal's task queue limit at the same rate, for comparison. */
    readonly temporal: {
      readonly reachedOverLimit: number | null;
      readonly busiestSecond: number;
      readonly busiestWithinLimitPlusOne: boolean;
      readonly peakInFlight: number;
    };
  };
  readonly totalMs: number;
}

/** Runs the benchmark; every process and database it started is stopped and dropped however it ends. */
export async function runRateLimitBench(log: (line: string) => void, args: readonly string[]): Promise<RateLimitBenchResult> {
  const options = parseRateLimitOptions(args);
  const began = performance.now();
  const loadAverage = os.loadavg()[0] ?? 0;
  // .build/bench/ratelimit/index.js -> the package root, where bin/ and dist/ are.
  const root = path.resolve(__dirname, '..', '..', '..');
  const { folder, ledger } = await openBenchWorkspace('bench-ratelimit', log);
  const specs: PhaseSpec[] = [
    { name: 'unlimited', tidesync: null, temporalActivitiesPerSecond: null, sizedFor: Math.max(UNLIMITED_SIZED_FOR, 2 * options.rate) },
    {
      name: 'tidesync',
      tidesync: { requestsPerSecond: options.rate, maxConcurrent: options.maxConcurrent },
      temporalActivitiesPerSecond: null,
      sizedFor: options.rate,
    },
    { name: 'temporal', tidesync: null, temporalActivitiesPerSecond: options.rate, sizedFor: options.rate },
  ];
  const abort = new AbortController();
  const cleanups = new Cleanups();
  const phases: PhaseReport[] = [];
  try {
    log('starting postgres and temporal, bundling the workflows');
    const [servers, workflowBundle] = await Promise.all([startTestServers(), writeWorkflowBundle(root, folder)]);
    cleanups.add('stop the servers', () => servers.stop());
    const database = await createTestDatabase(servers.databaseUrl);
    cleanups.add('drop the database', () => database.drop());
    const temporal = await resolveTemporalSettings({ address: servers.temporalAddress }, {});
    if (!temporal) throw new Error('unreachable: an address was given');
    const taskQueue = `bench-ratelimit-${randomBytes(4).toString('hex')}`;
    const tidesync = await startTidesync(demoDeclarations, {
      servers: { databaseUrl: database.url, temporal, uiUrl: null },
      taskQueue,
      log,
    });
    cleanups.add('stop tidesync', () => tidesync.close());
    const token = randomBytes(16).toString('hex');
    const remote = await DemoCrmServer.start({ token });
    cleanups.add('stop the demo CRM', () => remote.stop());
    if (options.latencyMs > 0) remote.injectFault({ kind: 'slow', delayMs: options.latencyMs, apply: true, count: 1_000_000_000 });
    log(`demo CRM on ${remote.url}, ${options.latencyMs} ms a request`);

    const ids = new IdRange();
    const context: PhaseContext = {
      client: tidesync.client,
      remote,
      integration: { type: 'demo', name: INTEGRATION, transport: { baseUrl: remote.url }, secretRef: `env:${DEMO_TOKEN_ENV}` },
      ids,
      rate: options.rate,
      seconds: options.seconds,
      log,
    };
    const seeded = 2 * WARMUP.pages * PAGE_SIZE + 2 * WARMUP.singles + specs.reduce((n, s) => n + rowsOf(s, options.seconds), 0);
    await ensureContactsTable(tidesync.db);
    await seedContacts(tidesync.db, seeded);
    log(`seeded ${seeded} contacts`);

    const setup: WorkerSetup = {
      root,
      folder,
      databaseUrl: database.url,
      temporalAddress: servers.temporalAddress,
      taskQueue,
      workflowBundle,
      token,
      ledger,
      signal: abort.signal,
      log,
    };
    // Phases 1 and 2 share a pair of workers; the third needs a pair with Temporal's limit set.
    for (const group of [specs.slice(0, 2), specs.slice(2)]) {
      const limit = group[0]?.temporalActivitiesPerSecond ?? null;
      const pair: WorkerPair = await startWorkers(setup, limit === null ? 'plain' : 'task-queue-limit', limit);
      try {
        await context.client.upsertIntegration({ ...context.integration, rateLimit: { requestsPerSecond: null, maxConcurrent: null } });
        const warm = await runWorkload(tidesync.client, remote, INTEGRATION, ids.take(WARMUP.pages, WARMUP.singles), 60_000);
        log(`warm-up done in ${warm.ms} ms`);
        for (const spec of group) phases.push(await runPhase(context, spec));
      } finally {
        await pair.stop();
      }
    }
  } finally {
    abort.abort();
    log('cleaning up');
    await cleanups.run(log);
  }
  await rm(folder, { recursive: true, force: true });
  return {
    bench: 'ratelimit',
    machine: { cpus: os.cpus().length, node: process.version, loadAverage: Math.round(loadAverage * 100) / 100 },
    config: { ...options, workers: 2, pageSize: PAGE_SIZE, parallelism: PARALLELISM },
    phases,
    totals: {
      requests: sum(phases.map((p) => p.requests)),
      bulkRequests: sum(phases.map((p) => p.parts.bulk.requests)),
      singleRequests: sum(phases.map((p) => p.parts.perEntity.requests)),
    },
    summary: summarise(phases, options),
    totalMs: Math.round(performance.now() - began),
  };
}

/** The contacts a phase's workload exports. */
function rowsOf(spec: PhaseSpec, seconds: number): number {
  const { pages, singles } = phaseSize(spec, seconds);
  return pages * PAGE_SIZE + singles;
}

function summarise(phases: readonly PhaseReport[], options: RateLimitBenchOptions): RateLimitBenchResult['summary'] {
  const find = (name: PhaseReport['phase']) => {
    const phase = phases.find((p) => p.phase === name);
    if (!phase) throw new Error(`the ${name} phase did not run`);
    return phase;
  };
  const [unlimited, tidesync, temporal] = [find('unlimited'), find('tidesync'), find('temporal')];
  const withinLimit = (p: PhaseReport) => p.busiestSecond <= options.rate + 1;
  return {
    limit: options.rate,
    maxConcurrent: options.maxConcurrent,
    unlimitedRequestsPerSec: unlimited.requestsPerSec,
    unlimitedOverLimit: unlimited.ratioToLimit,
    reachedOverLimit: tidesync.ratioToLimit,
    busiestSecond: tidesync.busiestSecond,
    busiestWithinLimitPlusOne: withinLimit(tidesync),
    peakInFlight: tidesync.peakInFlight,
    peakWithinMaxConcurrent: tidesync.peakInFlight <= options.maxConcurrent,
    temporal: {
      reachedOverLimit: temporal.ratioToLimit,
      busiestSecond: temporal.busiestSecond,
      busiestWithinLimitPlusOne: withinLimit(temporal),
      peakInFlight: temporal.peakInFlight,
    },
  };
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}
