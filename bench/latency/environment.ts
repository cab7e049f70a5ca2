/**
 * Everything the latency benchmark runs against: the stack (configured, or embedded under
 * `<home>/bench`, apart from the demo's so both can run at once), a fresh database, the demo
 * CRM with a write hook, the runtime, a worker on its own task queue, the client and the relay.
 */
import { performance } from 'node:perf_hooks';
import type { Client } from '@temporalio/client';
import { Kysely, PostgresDialect } from 'kysely';
import { Pool } from 'pg';
import { type Integration, OutboxRelay, type Runtime, type TidesyncClient } from 'tidesync';
import { createTestDatabase, startTestServers, startTestTidesync } from 'tidesync/testing';
import { demoDeclarations } from '../../examples/demo';
import { DemoContactWriter } from '../../examples/demo/contact-writer';
import { PassTimer } from './breakdown';
import { setupDemo } from '../../examples/demo/demo-setup';
import { ensureContactsTable, seedContacts } from '../../examples/demo/local-contacts';
import type { CrmContact } from '../../examples/demo/remote/crm-contact';
import type { DemoCrmServer } from '../../examples/demo/remote/crm-server';

/** Runs cleanup steps newest first; every step runs even when an earlier one fails. */
export class Cleanups {
  readonly #steps: Array<{ what: string; run: () => Promise<unknown> }> = [];

  /** Adds a step that undoes what was just set up. */
  add(what: string, run: () => Promise<unknown>): void {
    this.#steps.unshift({ what, run });
  }

  /** Runs every step; failures are logged, not thrown, so the rest still gets cleaned up. */
  async run(log: (line: string) => void): Promise<void> {
    for (const step of this.#steps.splice(0)) {
      try {
        await step.run();
      } catch (error) {
        log(`cleanup: ${step.what} failed: ${(error as Error).message}`);
      }
    }
  }
}

/** The parts of a running benchmark environment. */
export interface BenchEnvironment {
  /** The application's own pool, which produces the changes. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly appDb: Kysely<any>;
  readonly runtime: Runtime;
  readonly client: TidesyncClient;
  readonly integration: Integration;
  readonly remote: DemoCrmServer;
  /** The Temporal client (histories, visibility). */
  readonly temporal: Client;
  /** Times the relay's calls, the writer and tidesync's queries (see `breakdown.ts`). */
  readonly timer: PassTimer;
  readonly stackMs: number;
  /** Routes the demo CRM's write hook; null stops observing. */
  observeWrites(observer: ((contact: CrmContact) => void) | null): void;
  /** Starts relaying the outbox (only the temporal phase needs it). */
  startRelay(): void;
  /** How many export workflows of the integration are still running. */
  runningExports(): Promise<number>;
}

/** Options of `startEnvironment`. */
export interface EnvironmentOptions {
  readonly contacts: number;
  readonly integrationName: string;
  readonly log: (line: string) => void;
}

/**
 * Starts everything through tidesync's public API (the servers of `tidesync/testing`: an
 * embedded PostgreSQL and an in-memory Temporal dev server, unless DATABASE_URL /
 * TEMPORAL_ADDRESS say otherwise), registering each part's cleanup in `cleanups`.
 */
export async function startEnvironment(options: EnvironmentOptions, cleanups: Cleanups): Promise<BenchEnvironment> {
  const { log } = options;
  const began = performance.now();
  const servers = await startTestServers();
  cleanups.add('stop the servers', () => servers.stop());
  const stackMs = Math.round(performance.now() - began);
  const database = await createTestDatabase(servers.databaseUrl);
  cleanups.add('drop the database', () => database.drop());
  const timer = new PassTimer();
  // The application's own pool: its queries (the benchmark's commits) are not tidesync's database time.
  const pool = new Pool({ connectionString: database.url, max: 10 });
  pool.on('connect', (client) => timer.exclude(client));
  // Dropping the database at cleanup ends its idle connections: that must not crash the run.
  pool.on('error', () => undefined);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const app = { app: new Kysely<any>({ dialect: new PostgresDialect({ pool }) }) };
  cleanups.add('close the app pool', () => app.app.destroy());
  // The job reads `contacts`: it must exist before the worker starts (the worker checks its jobs).
  await ensureContactsTable(app.app);
  await seedContacts(app.app, options.contacts);

  // The demo's declarations, with the writer timed.
  const declarations = { ...demoDeclarations, writers: { 'demo.contact_writer': timer.writer(new DemoContactWriter()) } };
  const tidesync = await startTestTidesync(declarations, {
    databaseUrl: database.url,
    temporalAddress: servers.temporalAddress,
    poolSize: 20,
    log,
  });
  cleanups.add('stop tidesync', () => tidesync.close());
  await terminateLeftovers(tidesync.temporal, options.integrationName, log);

  let observer: ((contact: CrmContact) => void) | null = null;
  const demo = await setupDemo({
    db: app.app,
    client: tidesync.client,
    contacts: options.contacts,
    integrationName: options.integrationName,
    onWrite: (contact: CrmContact) => observer?.(contact),
  });
  cleanups.add('stop the demo CRM', () => demo.remote.stop());
  log(`demo CRM ${demo.remote.url}, ${options.contacts} contacts`);
  const relay = new OutboxRelay({ db: tidesync.store, databaseUrl: database.url, client: timer.scheduler(tidesync.client), log });
  cleanups.add('stop the relay', () => relay.stop());

  return {
    appDb: app.app,
    runtime: tidesync.runtime,
    client: tidesync.client,
    integration: demo.integration,
    remote: demo.remote,
    temporal: tidesync.temporal,
    timer,
    stackMs,
    observeWrites: (next) => void (observer = next),
    startRelay: () => relay.start(),
    runningExports: async () => (await tidesync.temporal.workflow.count(runningQuery(options.integrationName))).count,
  };
}

/**
 * Workflow ids are `export/<integration>/...` and the embedded Temporal keeps its history between
 * runs: a run killed mid-way leaves workflows bound to its dead task queue, which would swallow
 * this run's signals. Terminate them first (best effort: an unknown search attribute only warns).
 */
async function terminateLeftovers(temporal: Client, integration: string, log: (line: string) => void): Promise<void> {
  try {
    let count = 0;
    for await (const execution of temporal.workflow.list({ query: runningQuery(integration) })) {
      await temporal.workflow.getHandle(execution.workflowId, execution.runId).terminate('left over from an earlier benchmark run');
      count += 1;
    }
    if (count > 0) log(`terminated ${count} workflows left over from an earlier run`);
  } catch (error) {
    log(`could not look for left-over workflows: ${(error as Error).message}`);
  }
}

/** Visibility query of the integration's running export workflows. */
function runningQuery(integration: string): string {
  return `TidesyncIntegration = '${integration}' AND ExecutionStatus = 'Running'`;
}
