/**
 * `npm run bench -- bulk [--entities 10000,100000] [--page-size N] [--parallelism N] [--rounds 3] [--creates key|id] [--profile DIR]`
 * (without `--page-size`, pages fitted to the rows as a bulk export fits them):
 * the throughput of a bulk export against a direct loop doing the same reads, processing and
 * batched writes without Temporal or durability, on the embedded stack (unless DATABASE_URL /
 * TEMPORAL_ADDRESS say otherwise), against one demo CRM in a process of its own. Per size, in
 * rounds that alternate the two sides, the median round's figures: entities/s of both and their
 * ratio, the worker's peak RSS, history events per 1,000 entities, the time to the first remote
 * write, and where the CPU went (the remote's share among it); every round's rates beside them.
 * `--profile DIR` runs the worker under `node --cpu-prof` and leaves its profiles in DIR.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { DEFAULT_BULK_PARALLELISM, MAX_BULK_PAGE_SIZE, MAX_BULK_PARALLELISM } from 'tidesync';
import { startTestServers } from 'tidesync/testing';
import { DEMO_TOKEN_ENV } from '../../examples/demo/demo-setup';
import { BATCH_UPSERT_LIMIT } from '../../examples/demo/remote/crm-client';
import { startRemoteCrm } from '../crm/remote';
import { Cleanups } from '../latency/environment';
import { openBenchWorkspace, writeWorkflowBundle } from '../support/workspace';
import { BULK_CREATES, type BulkCreates, type PhaseReport, WARMUP, runPhase } from './phase';

/** The sizes run unless `--entities` says otherwise. */
const DEFAULT_ENTITIES = [10_000, 100_000];
/** The most entities one size may have: seeding and the remote's memory grow with it. */
const MAX_ENTITIES = 5_000_000;
/**
 * Measured rounds per size unless `--rounds` says otherwise: on a shared 2-core machine one run's
 * rates move by 10-25%, so one round's ratio says little. Three gave medians that moved by 0.1
 * between runs (one run's rounds at 10,000: 0.39 to 0.54, the CRM's CPU per entity 20 to 37 us
 * between rounds of the same side); five give a steadier median.
 */
const DEFAULT_ROUNDS = 5;
const MAX_ROUNDS = 9;

/** The targets on a 2-core machine with the embedded stack. */
export const BULK_TARGETS = { entitiesPerSec: 5_000, ratioToDirect: 0.5, rssGrowth: 1.2 } as const;

/** What the benchmark runs. */
export interface BulkBenchOptions {
  readonly entities: readonly number[];
  /** `null`: none given; the export fits its pages to the rows (and the direct loop pages alike). */
  readonly pageSize: number | null;
  readonly parallelism: number;
  readonly rounds: number;
  readonly profileDir: string | null;
  /**
   * How the demo writer creates contacts: `key`, by the contact's id as the CRM's external key
   * (`Writer.upsertsByKey`: no pending create recorded first), or `id`, a plain create whose
   * pending record settles a lost answer. Both sides of a round write alike.
   */
  readonly creates: BulkCreates;
}

/** What the benchmark prints. */
export interface BulkBenchResult {
  readonly bench: 'bulk';
  /** `loadAverage`: the 1-minute load when the run began; above `cpus`, other work shares the machine. */
  readonly machine: { readonly cpus: number; readonly node: string; readonly loadAverage: number };
  readonly config: {
    readonly entities: readonly number[];
    readonly pageSize: number | null;
    readonly parallelism: number;
    readonly rounds: number;
    readonly creates: BulkCreates;
    readonly batchSize: number;
    readonly warmup: string;
  };
  readonly phases: PhaseReport[];
  /** The figures the targets are about, and whether each is met. */
  readonly summary: {
    /** Bulk entities/s at each size. */
    readonly entitiesPerSec: readonly number[];
    /** Bulk over direct at each size (the median round's). */
    readonly ratio: readonly number[];
    /** Every round's ratio at each size. */
    readonly ratioRounds: ReadonlyArray<readonly number[]>;
    /** The worker's peak RSS (MiB) at each size (the highest of its rounds), and the largest size's over the smallest's. */
    readonly peakRssMb: readonly number[];
    readonly rssGrowth: number | null;
    readonly historyEventsPer1000: readonly number[];
    readonly firstWriteMs: readonly (number | null)[];
    /** The demo CRM's CPU time over the machine's busy time during each bulk export. */
    readonly remoteShareOfBusy: readonly number[];
    readonly targets: {
      readonly entitiesPerSec: { readonly target: number; readonly met: boolean };
      readonly ratioToDirect: { readonly target: number; readonly met: boolean };
      readonly rssGrowth: { readonly target: number; readonly met: boolean | null };
    };
  };
  readonly remoteMatchesLocal: boolean;
  readonly totalMs: number;
}

/** Reads the options after `bulk`; errors name the bad value. */
export function parseBulkOptions(args: readonly string[]): BulkBenchOptions {
  const { values } = parseArgs({
    args: [...args],
    options: {
      entities: { type: 'string' },
      'page-size': { type: 'string' },
      parallelism: { type: 'string' },
      rounds: { type: 'string' },
      profile: { type: 'string' },
      creates: { type: 'string' },
    },
    strict: true,
  });
  const whole = (name: string, value: string, max: number): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`--${name} '${value}' is not a whole number from 1 to ${max}`);
    return n;
  };
  const entities = values.entities?.split(',').map((v) => whole('entities', v.trim(), MAX_ENTITIES)) ?? DEFAULT_ENTITIES;
  const creates = values.creates ?? 'key';
  if (!isBulkCreates(creates)) throw new Error(`--creates '${creates}' is not one of ${BULK_CREATES.join(', ')}`);
  return {
    creates,
    entities,
    pageSize: values['page-size'] ? whole('page-size', values['page-size'], MAX_BULK_PAGE_SIZE) : null,
    parallelism: values.parallelism ? whole('parallelism', values.parallelism, MAX_BULK_PARALLELISM) : DEFAULT_BULK_PARALLELISM,
    rounds: values.rounds ? whole('rounds', values.rounds, MAX_ROUNDS) : DEFAULT_ROUNDS,
    profileDir: values.profile ? path.resolve(values.profile) : null,
  };
}

function isBulkCreates(value: string): value is BulkCreates {
  return (BULK_CREATES as readonly string[]).includes(value);
}

/** Runs the benchmark; every process and database it started is stopped and dropped however it ends. */
export async function runBulkBench(log: (line: string) => void, args: readonly string[]): Promise<BulkBenchResult> {
  const options = parseBulkOptions(args);
  const began = performance.now();
  const loadAverage = os.loadavg()[0] ?? 0;
  // .build/bench/bulk/index.js -> the package root, where bin/ and dist/ are.
  const root = path.resolve(__dirname, '..', '..', '..');
  const { folder, ledger } = await openBenchWorkspace('bench-bulk', log);
  if (options.profileDir) await mkdir(options.profileDir, { recursive: true });
  const abort = new AbortController();
  const cleanups = new Cleanups();
  const phases: PhaseReport[] = [];
  try {
    log('starting postgres and temporal, bundling the workflows');
    const [servers, workflowBundle] = await Promise.all([startTestServers(), writeWorkflowBundle(root, folder)]);
    cleanups.add('stop the servers', () => servers.stop());
    const token = randomBytes(16).toString('hex');
    // The direct loop resolves the integration's secret reference here, as the worker does there.
    process.env[DEMO_TOKEN_ENV] = token;
    const remote = await startRemoteCrm(path.join(folder, 'crm.json'), token);
    cleanups.add('stop the demo CRM', async () => {
      await remote.stop().catch(() => remote.kill());
    });
    log(`demo CRM on ${remote.url} in its own process`);
    const stack = {
      root,
      folder,
      databaseUrl: servers.databaseUrl,
      temporalAddress: servers.temporalAddress,
      remote,
      token,
      workflowBundle,
      ledger,
      pageSize: options.pageSize,
      parallelism: options.parallelism,
      rounds: options.rounds,
      profileDir: options.profileDir,
      creates: options.creates,
      signal: abort.signal,
      log,
    };
    for (const entities of options.entities) phases.push(await runPhase(stack, entities, cleanups));
  } finally {
    abort.abort();
    log('cleaning up');
    await cleanups.run(log);
  }
  await rm(folder, { recursive: true, force: true });
  return {
    bench: 'bulk',
    machine: { cpus: os.cpus().length, node: process.version, loadAverage: Math.round(loadAverage * 100) / 100 },
    config: {
      entities: options.entities,
      pageSize: options.pageSize,
      parallelism: options.parallelism,
      rounds: options.rounds,
      creates: options.creates,
      batchSize: BATCH_UPSERT_LIMIT,
      warmup: WARMUP,
    },
    phases,
    summary: summarise(phases),
    remoteMatchesLocal: phases.every((p) => p.remoteMatchesLocal),
    totalMs: Math.round(performance.now() - began),
  };
}

function summarise(phases: readonly PhaseReport[]): BulkBenchResult['summary'] {
  const entitiesPerSec = phases.map((p) => p.bulk.entitiesPerSec);
  const ratio = phases.map((p) => p.ratio);
  const peakRssMb = phases.map((p) => p.bulkPeakRssMb);
  const smallest = phases.reduce<PhaseReport | undefined>((a, p) => (a && a.entities <= p.entities ? a : p), undefined);
  const largest = phases.reduce<PhaseReport | undefined>((a, p) => (a && a.entities >= p.entities ? a : p), undefined);
  const rssGrowth =
    smallest && largest && smallest !== largest ? Math.round((largest.bulkPeakRssMb / smallest.bulkPeakRssMb) * 100) / 100 : null;
  return {
    entitiesPerSec,
    ratio,
    ratioRounds: phases.map((p) => p.rounds.map((r) => r.ratio)),
    peakRssMb,
    rssGrowth,
    historyEventsPer1000: phases.map((p) => p.bulk.history.per1000),
    firstWriteMs: phases.map((p) => p.bulk.firstWriteMs),
    remoteShareOfBusy: phases.map((p) => p.bulk.cpu.remote.shareOfBusy),
    targets: {
      entitiesPerSec: { target: BULK_TARGETS.entitiesPerSec, met: entitiesPerSec.every((r) => r >= BULK_TARGETS.entitiesPerSec) },
      ratioToDirect: { target: BULK_TARGETS.ratioToDirect, met: ratio.every((r) => r >= BULK_TARGETS.ratioToDirect) },
      rssGrowth: { target: BULK_TARGETS.rssGrowth, met: rssGrowth === null ? null : rssGrowth <= BULK_TARGETS.rssGrowth },
    },
  };
}
