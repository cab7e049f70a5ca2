/**
 * One size of the bulk benchmark: a fresh database seeded with that many demo contacts, then
 * rounds of the direct loop over them (in this process) and the bulk export of them (a worker
 * process started for this size), both against the one demo CRM, wiped before each run so every
 * run creates every contact. Each side first goes once through the whole table unmeasured. After
 * the last export the remote is read back and compared with the local table.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import { DEFAULT_BULK_PAGE_SIZE, fitPageSize, resolveTemporalSettings, startTidesync } from 'tidesync';
import { createTestDatabase } from 'tidesync/testing';
import { demoDeclarations } from '../../examples/demo';
import { DEMO_TOKEN_ENV, compareRemoteWithLocal } from '../../examples/demo/demo-setup';
import { ensureContactsTable, seedContacts } from '../../examples/demo/local-contacts';
import { DemoCrmClient } from '../../examples/demo/remote/crm-client';
import type { ProcessLedger } from '../chaos/leftovers';
import { freePort } from '../chaos/stack';
import { WorkerProcess } from '../chaos/worker-process';
import type { RemoteCrm } from '../crm/remote';
import type { Cleanups } from '../latency/environment';
import { type BulkRunReport, startBulkWorker } from './bulk-run';
import { type CpuWindow, cpuPerEntity, openCpuWindow } from './cpu';
import { type DirectBulkResult, runDirectBulk } from './direct';

const INTEGRATION = 'bench';
const CONNECTOR = 'contact';
/**
 * What each side goes through first, unmeasured, so neither is timed while its code is still cold:
 * the whole table, by the path it is measured on. (A warm-up of the export by 5,000 ids went
 * another way, no planning, no keyset pages, and left V8 still compiling the measured path: in the
 * first measured export of 10,000 rows, 85 TurboFan compiles took 0.5 s of the worker's threads.)
 */
export const WARMUP = 'one unmeasured run of each side over the whole table';

/** The values of the benchmark's `--creates` (see `BulkBenchOptions.creates`). */
export const BULK_CREATES = ['key', 'id'] as const;
/** How the demo writer creates contacts in a run of the benchmark. */
export type BulkCreates = (typeof BULK_CREATES)[number];

/** What every phase shares. */
export interface BulkBenchStack {
  /** The package root (bin/, dist/, .build/). */
  readonly root: string;
  /** Where the worker's logs and profiles go. */
  readonly folder: string;
  readonly databaseUrl: string;
  readonly temporalAddress: string;
  readonly remote: RemoteCrm;
  readonly token: string;
  readonly workflowBundle: string;
  readonly ledger: ProcessLedger;
  /** Rows per page; `null`: fitted to the rows, as a bulk export without a page size fits them. */
  readonly pageSize: number | null;
  readonly parallelism: number;
  /** Measured runs of each side per size, alternating (direct, bulk, direct, bulk, ...). */
  readonly rounds: number;
  /** Run the worker under `node --cpu-prof`, its profile written here. */
  readonly profileDir: string | null;
  /** How the demo writer creates (`--creates`). */
  readonly creates: BulkCreates;
  readonly signal: AbortSignal;
  readonly log: (line: string) => void;
}

/** One round of one size: the direct loop, then the bulk export, each over the whole table. */
interface Round {
  readonly direct: DirectBulkResult & {
    readonly entitiesPerSec: number;
    readonly cpu: CpuWindow;
    readonly cpuUsPerEntity: ReturnType<typeof cpuPerEntity>;
  };
  readonly bulk: Omit<BulkRunReport, 'result'> & {
    readonly cpuUsPerEntity: ReturnType<typeof cpuPerEntity>;
    readonly status: string;
    readonly written: number;
    readonly failed: number;
    readonly runs: number;
  };
  /** Bulk entities/s over direct entities/s, in this round. */
  readonly ratio: number;
}

/**
 * The figures of one size: those of its median round (by ratio), with every round's main figures
 * beside them. Rounds alternate the two sides, so a machine that slows down or speeds up during
 * the run (other work, a neighbour on the host) moves both, not one.
 */
export interface PhaseReport extends Round {
  readonly entities: number;
  /** Rows per page of both sides (the export's fitted size when the options gave none). */
  readonly pageSize: number;
  readonly seedMs: number;
  readonly rounds: ReadonlyArray<{
    readonly direct: number;
    readonly bulk: number;
    readonly ratio: number;
    readonly bulkPeakRssMb: number;
    readonly cpuUsPerEntity: { readonly direct: number; readonly bulk: number };
  }>;
  /** The worker's highest peak RSS over the rounds. */
  readonly bulkPeakRssMb: number;
  /** The remote holds every local contact as it is, and every local row the CRM id of its record. */
  readonly remoteMatchesLocal: boolean;
  readonly remoteContacts: number | null;
}

type AppDb = Parameters<typeof ensureContactsTable>[0];

/** As if never exported: no CRM id written back into any row. */
async function forgetCrmIds(db: AppDb): Promise<void> {
  await sql`update contacts set crm_id = null where crm_id is not null`.execute(db);
}

/**
 * Vacuums (and analyzes) the two tables the resets rewrite, before a measured run: otherwise the
 * autovacuum of a reset's dead rows (every sync state deleted, every row's CRM id cleared) lands in
 * whichever side runs next, by the launcher's clock. What a side's own writes leave to autovacuum
 * still counts in its window when it comes then.
 */
async function vacuumed(db: AppDb): Promise<void> {
  await sql`vacuum (analyze) contacts, tidesync.sync_state`.execute(db);
}

/**
 * Rows whose CRM id is not the one written back for them: none at all (after the direct loop,
 * whose warm-up ids were forgotten first), or not their sync state's remote id (after the export).
 */
async function unlinkedRows(db: AppDb, integrationId?: number): Promise<number> {
  const { rows } =
    integrationId === undefined
      ? await sql<{ n: string }>`select count(*) as n from contacts where crm_id is null`.execute(db)
      : await sql<{ n: string }>`
          select count(*) as n from contacts c
          left join tidesync.sync_state s on s.integration_id = ${integrationId} and s.connector = ${CONNECTOR} and s.entity_id = c.id::text
          where s.remote_id is null or c.crm_id is distinct from s.remote_id`.execute(db);
  return Number(rows[0]?.n);
}

/** Runs one size; everything it opens is closed again through `cleanups` or before it returns. */
export async function runPhase(stack: BulkBenchStack, entities: number, cleanups: Cleanups): Promise<PhaseReport> {
  const { log, remote } = stack;
  const database = await createTestDatabase(stack.databaseUrl);
  cleanups.add(`drop the database of ${entities}`, () => database.drop());
  const temporal = await resolveTemporalSettings({ address: stack.temporalAddress }, {});
  if (!temporal) throw new Error('unreachable: an address was given');
  const tidesync = await startTidesync(demoDeclarations, { servers: { databaseUrl: database.url, temporal, uiUrl: null }, log });
  try {
    const seeding = performance.now();
    await ensureContactsTable(tidesync.db);
    await seedContacts(tidesync.db, entities);
    const seedMs = Math.round(performance.now() - seeding);
    log(`${entities}: seeded in ${seedMs} ms`);
    const integration = await tidesync.client.upsertIntegration({
      type: 'demo',
      name: INTEGRATION,
      transport: { baseUrl: remote.url, ...(stack.creates === 'key' ? { upsertByKey: true } : {}) },
      secretRef: `env:${DEMO_TOKEN_ENV}`,
    });

    // The direct loop pages as the export will: the given size, or the one the export fits.
    const pageSize = stack.pageSize ?? fitPageSize(entities, stack.parallelism, DEFAULT_BULK_PAGE_SIZE);
    const directOptions = {
      runtime: tidesync.runtime,
      integration,
      connector: CONNECTOR,
      pageSize,
      parallelism: stack.parallelism,
    };
    // The warm-up of the direct loop: one run over the whole table, as the worker's warm-up export.
    await runDirectBulk({ ...directOptions, runKey: randomBytes(4).toString('hex') });
    const worker = new WorkerProcess({
      root: stack.root,
      env: {
        TIDESYNC_CONFIG: path.join(stack.root, '.build', 'examples', 'demo', 'tidesync.config.js'),
        DATABASE_URL: database.url,
        TEMPORAL_ADDRESS: stack.temporalAddress,
        TIDESYNC_TASK_QUEUE: tidesync.taskQueue,
        TIDESYNC_WORKFLOW_BUNDLE: stack.workflowBundle,
        [DEMO_TOKEN_ENV]: stack.token,
        TIDESYNC_CODEC_KEY: '',
      },
      args: ['--no-relay'],
      nodeArgs: stack.profileDir ? ['--cpu-prof', '--cpu-prof-dir', stack.profileDir] : [],
      metricsPort: await freePort(),
      logFile: path.join(stack.folder, `worker-${entities}.log`),
      ledger: stack.ledger,
      log,
      signal: stack.signal,
    });
    // As if never exported: no sync state, no remote id written back, an empty remote.
    const unexported = async () => {
      await sql`delete from tidesync.sync_state where integration_id = ${integration.id}`.execute(tidesync.db);
      await forgetCrmIds(tidesync.db);
      await remote.wipe();
      await vacuumed(tidesync.db);
    };
    const bulkWorker = await startBulkWorker({
      tidesync,
      remote,
      worker,
      integration: INTEGRATION,
      connector: CONNECTOR,
      pageSize: stack.pageSize,
      parallelism: stack.parallelism,
      resetAfterWarmup: unexported,
      log,
    });
    const rounds: Round[] = [];
    try {
      for (let round = 1; round <= stack.rounds; round += 1) {
        const name = `${entities}, round ${round} of ${stack.rounds}`;
        await remote.wipe();
        await forgetCrmIds(tidesync.db);
        await vacuumed(tidesync.db);
        const window = await openCpuWindow(remote);
        const direct = await runDirectBulk({ ...directOptions, runKey: randomBytes(4).toString('hex') });
        const directCpu = await window.close();
        const directRate = Math.round((direct.read / direct.ms) * 1000);
        log(
          `${name}: pages of ${pageSize}; direct loop ${Math.round(direct.ms)} ms, ${directRate}/s, written ${direct.written}, failed ${direct.failed}`,
        );
        if (direct.written !== entities) throw new Error(`the direct loop wrote ${direct.written} of ${entities} contacts`);
        const directUnlinked = await unlinkedRows(tidesync.db);
        if (directUnlinked > 0) throw new Error(`the direct loop left ${directUnlinked} of ${entities} contacts without their CRM id`);

        await unexported();
        const { result, ...bulk } = await bulkWorker.measure();
        log(
          `${name}: bulk export ${bulk.ms} ms, ${bulk.entitiesPerSec}/s, ${result.status}, first write after ${bulk.firstWriteMs} ms, ` +
            `worker peak RSS ${bulk.worker.peakRssMb} MiB, ${bulk.history.events} history events in ${bulk.history.runs} runs; ` +
            `CPU per entity ${describeCpu(cpuPerEntity(bulk.cpu, entities))} (direct ${describeCpu(cpuPerEntity(directCpu, entities))})`,
        );
        rounds.push({
          direct: {
            ...direct,
            ms: Math.round(direct.ms),
            entitiesPerSec: directRate,
            cpu: directCpu,
            cpuUsPerEntity: cpuPerEntity(directCpu, entities),
          },
          bulk: {
            ...bulk,
            cpuUsPerEntity: cpuPerEntity(bulk.cpu, entities),
            status: result.status,
            written: result.counters.written,
            failed: result.counters.failed,
            runs: result.runs,
          },
          ratio: Math.round((bulk.entitiesPerSec / directRate) * 100) / 100,
        });
      }
    } finally {
      await bulkWorker.stop();
    }

    const crm = new DemoCrmClient({ baseUrl: remote.url, token: stack.token });
    const comparison = await compareRemoteWithLocal({ integration, crm }, tidesync.db, tidesync.client);
    for (const m of comparison.mismatches.slice(0, 5)) log(`  contact ${m.id}: ${m.problem}`);
    // Every row holds the CRM id its sync state holds (the job's write_back), as after the direct loop.
    const mislinked = await unlinkedRows(tidesync.db, integration.id);
    if (mislinked > 0) log(`${entities}: ${mislinked} contacts do not hold their CRM id`);
    const remoteMatchesLocal =
      mislinked === 0 && comparison.matches && comparison.checked === entities && comparison.remoteContacts === entities;
    log(`${entities}: remote ${remoteMatchesLocal ? 'matches' : 'DOES NOT match'} local (${comparison.remoteContacts} remote contacts)`);
    // The median round by ratio (of an even number, the lower of the middle two): its figures stand
    // for the size; every round's main figures are kept beside them.
    const median = [...rounds].sort((a, b) => a.ratio - b.ratio)[Math.floor((rounds.length - 1) / 2)] as Round;
    return {
      entities,
      pageSize,
      seedMs,
      ...median,
      rounds: rounds.map((r) => ({
        direct: r.direct.entitiesPerSec,
        bulk: r.bulk.entitiesPerSec,
        ratio: r.ratio,
        bulkPeakRssMb: r.bulk.worker.peakRssMb,
        cpuUsPerEntity: { direct: r.direct.cpuUsPerEntity.total, bulk: r.bulk.cpuUsPerEntity.total },
      })),
      bulkPeakRssMb: Math.max(...rounds.map((r) => r.bulk.worker.peakRssMb)),
      remoteMatchesLocal,
      remoteContacts: comparison.remoteContacts,
    };
  } finally {
    await tidesync.close();
  }
}

/** CPU per entity by part, for the progress log: `total us (worker 60, postgres 30, ...)`. */
function describeCpu(perEntity: ReturnType<typeof cpuPerEntity>): string {
  const { total, ...parts } = perEntity;
  const named = Object.entries(parts).filter(([, us]) => us > 0);
  return `${total} us (${named.map(([part, us]) => `${part} ${us}`).join(', ')})`;
}
