/**
 * Shared test helpers. The servers themselves are started once per run by `global-setup.ts`;
 * here each test file gets its own database (so files can run in parallel) and its own worker,
 * through the same public helpers an application uses (`tidesync/testing`).
 */
import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import type { Kysely } from 'kysely';
import { ensureContactsTable } from '../examples/demo/local-contacts';
import { demoDeclarations } from '../examples/demo';
import type { TidesyncClient } from '../src/client';
import type { TidesyncConfig } from '../src/config/define-config';
import type { RuntimeDeclarations, Runtime } from '../src/runtime';
import { type Databases, openDatabases } from '../src/store/db';
import { migrateToLatest } from '../src/store/migrations';
import type { TidesyncDatabase } from '../src/store/schema';
import { createTestDatabase as createDatabase, startTestTidesync } from '../src/testing';
import { installRuntime } from '../src/worker';

export { waitFor } from '../src/testing';

// Tests fail activities on purpose: keep the SDK's INFO and WARN lines out of their output.
installRuntime('ERROR');

function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests through jest so test/global-setup.ts starts the servers`);
  return value;
}

/** A name no other test file uses, e.g. for integrations (workflow ids include it). */
export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString('hex')}`;
}

/** A fresh database of one test file: tidesync's tables migrated, the demo's (empty) `contacts` table made. */
export interface TestDatabase {
  /** tidesync's own tables. */
  readonly db: Kysely<TidesyncDatabase>;
  /** The application's tables. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly app: Kysely<any>;
  readonly databases: Databases;
  readonly url: string;
  drop(): Promise<void>;
}

/** Creates a fresh, migrated database for one test file. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const created = await createDatabase(requireEnv('DATABASE_URL'));
  const databases = openDatabases(created.url);
  await migrateToLatest(databases.app, databases.schema);
  await ensureContactsTable(databases.app);
  return {
    db: databases.store,
    app: databases.app,
    databases,
    url: created.url,
    async drop() {
      await databases.destroy();
      await created.drop();
    },
  };
}

/** A worker on its own task queue, a Temporal client and a tidesync client, for one test file. */
export interface TestEngine {
  readonly runtime: Runtime;
  readonly worker: Worker;
  readonly temporal: Client;
  readonly client: TidesyncClient;
  readonly taskQueue: string;
  close(): Promise<void>;
}

/**
 * Starts tidesync with a worker (in the background) against the shared Temporal dev server, with
 * the demo's declarations unless `config` replaces them, plus `register` and extra `jobs`.
 */
export async function startTestEngine(
  database: Pick<TestDatabase, 'url'>,
  options: Pick<RuntimeDeclarations, 'register'> & {
    jobs?: readonly string[];
    address?: string;
    config?: TidesyncConfig;
    /** A workflow bundle of its own (a codec needs one built with its failure converter); default the run's. */
    workflowBundlePath?: string;
  } = {},
): Promise<TestEngine> {
  const base = options.config ?? demoDeclarations;
  const config: TidesyncConfig = { ...base, jobs: [...(base.jobs ?? []), ...(options.jobs ?? [])] };
  const tidesync = await startTestTidesync(config, {
    databaseUrl: database.url,
    temporalAddress: options.address ?? requireEnv('TEMPORAL_ADDRESS'),
    poolSize: 4,
    ...(options.register ? { register: options.register } : {}),
    ...(options.workflowBundlePath
      ? { workflowBundlePath: options.workflowBundlePath }
      : process.env['TIDESYNC_WORKFLOW_BUNDLE']
        ? { workflowBundlePath: process.env['TIDESYNC_WORKFLOW_BUNDLE'] }
        : {}),
  });
  return {
    runtime: tidesync.runtime,
    worker: tidesync.worker as Worker,
    temporal: tidesync.temporal,
    client: tidesync.client,
    taskQueue: tidesync.taskQueue,
    close: () => tidesync.close(),
  };
}
