/**
 * Everything the latency benchmark runs against: the stack (configured, or embedded under
 * `<home>/bench`, apart from the demo's so both can run at once), a fresh database, the demo
 * CRM with a write hook, the runtime, a worker on its own task queue, the client and the relay.
 */
import { randomBytes } from 'node:crypto';
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Kysely } from 'kysely';
import pg from 'pg';
import { TidesyncClient } from '../../src/client';
import type { Integration } from '../../src/connectors/connector';
import { setupDemo } from '../../src/connectors/demo/demo-setup';
import type { CrmContact } from '../../src/connectors/demo/remote/crm-contact';
import type { DemoCrmServer } from '../../src/connectors/demo/remote/crm-server';
import { createDb } from '../../src/db/connect';
import { migrateToLatest } from '../../src/db/migrations';
import type { TidesyncDatabase } from '../../src/db/schema';
import { OutboxRelay } from '../../src/outbox/relay';
import { createRuntime, type Runtime } from '../../src/runtime';
import { startDevStack } from '../../src/stack/dev-stack';
import { tidesyncHome } from '../../src/stack/paths';
import { createDatabase } from '../../src/stack/postgres';
import { cachedCliPath } from '../../src/stack/temporal-cli';
import { createWorker, installRuntime } from '../../src/worker';

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
  /** The worker's, relay's and client's pool. */
  readonly db: Kysely<TidesyncDatabase>;
  /** The application's own pool, which produces the changes. */
  readonly appDb: Kysely<TidesyncDatabase>;
  readonly runtime: Runtime;
  readonly client: TidesyncClient;
  readonly integration: Integration;
  readonly remote: DemoCrmServer;
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

/** Starts everything, registering its cleanup in `cleanups` as each part comes up. */
export async function startEnvironment(options: EnvironmentOptions, cleanups: Cleanups): Promise<BenchEnvironment> {
  const { log } = options;
  const began = performance.now();
  // The SDK's WARN lines (activity retries and the like) would drown the progress lines.
  installRuntime('ERROR');
  const stack = await startDevStack({ home: path.join(tidesyncHome(), 'bench'), env: await stackEnv(), ui: false, handleSignals: true, log });
  cleanups.add('stop the stack', () => stack.stop());
  const stackMs = Math.round(performance.now() - began);

  const name = `tidesync_bench_${randomBytes(4).toString('hex')}`;
  const url = await createDatabase(stack.databaseUrl, name);
  cleanups.add(`drop database ${name}`, () => dropDatabase(stack.databaseUrl, name));
  const db = createDb(url, { max: 20 });
  cleanups.add('close the worker pool', () => db.destroy());
  const appDb = createDb(url, { max: 10 });
  cleanups.add('close the app pool', () => appDb.destroy());
  await migrateToLatest(db as Kysely<unknown>);

  let observer: ((contact: CrmContact) => void) | null = null;
  const demo = await setupDemo({
    db,
    contacts: options.contacts,
    integrationName: options.integrationName,
    onWrite: (contact: CrmContact) => observer?.(contact),
  });
  cleanups.add('stop the demo CRM', () => demo.remote.stop());
  log(`database ${name}, demo CRM ${demo.remote.url}, ${options.contacts} contacts`);

  const runtime = await createRuntime({ db });
  const taskQueue = `bench-${randomBytes(4).toString('hex')}`;
  const nativeConnection = await NativeConnection.connect({ address: stack.temporalAddress });
  cleanups.add('close the worker connection', () => nativeConnection.close());
  const worker = await createWorker({ runtime, connection: nativeConnection, namespace: stack.namespace, taskQueue });
  const workerDone = worker.run();
  cleanups.add('stop the worker', async () => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await workerDone;
  });
  const connection = await Connection.connect({ address: stack.temporalAddress });
  cleanups.add('close the client connection', () => connection.close());
  const temporal = new Client({ connection, namespace: stack.namespace });
  await terminateLeftovers(temporal, options.integrationName, log);
  const client = new TidesyncClient({ runtime, db, temporal, taskQueue });
  const relay = new OutboxRelay({ db, databaseUrl: url, client, log });
  cleanups.add('stop the relay', () => relay.stop());

  return {
    db,
    appDb,
    runtime,
    client,
    integration: demo.integration,
    remote: demo.remote,
    stackMs,
    observeWrites: (next) => void (observer = next),
    startRelay: () => relay.start(),
    runningExports: async () => (await temporal.workflow.count(runningQuery(options.integrationName))).count,
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

/**
 * The environment for the stack, pointing TEMPORAL_CLI_PATH at the demo's cached Temporal CLI when
 * there is one: the bench has its own home, and would otherwise install a second 150 MB copy.
 */
async function stackEnv(): Promise<NodeJS.ProcessEnv> {
  if (process.env['TEMPORAL_CLI_PATH'] || process.env['TEMPORAL_ADDRESS']) return process.env;
  const cached = cachedCliPath(tidesyncHome());
  const usable = await access(cached, constants.X_OK).then(
    () => true,
    () => false,
  );
  return usable ? { ...process.env, TEMPORAL_CLI_PATH: cached } : process.env;
}

/** Visibility query of the integration's running export workflows. */
function runningQuery(integration: string): string {
  return `TidesyncIntegration = '${integration}' AND ExecutionStatus = 'Running'`;
}

async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`drop database if exists ${pg.escapeIdentifier(name)} with (force)`);
  } finally {
    await client.end();
  }
}
