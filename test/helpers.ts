/**
 * Shared test helpers. The servers themselves are started once per run by `global-setup.ts`;
 * here each test file gets its own database (so files can run in parallel) and its own worker.
 */
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { Kysely, PostgresDialect, sql } from 'kysely';
import { Pool } from 'pg';
import { createDb } from '../src/db/connect';
import { migrateToLatest } from '../src/db/migrations';
import type { TidesyncDatabase } from '../src/db/schema';
import { type Runtime, createRuntime, type RuntimeOptions } from '../src/runtime';
import { TidesyncClient } from '../src/client';
import { createWorker, installRuntime } from '../src/worker';

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

/** Creates a fresh, migrated database for one test file and returns a Kysely on it. */
export async function createTestDatabase(): Promise<{ db: Kysely<TidesyncDatabase>; url: string; drop(): Promise<void> }> {
  const baseUrl = requireEnv('DATABASE_URL');
  const name = `tidesync_test_${randomBytes(4).toString('hex')}`;
  const admin = new Kysely<unknown>({ dialect: new PostgresDialect({ pool: new Pool({ connectionString: baseUrl, max: 1 }) }) });
  await sql`create database ${sql.id(name)}`.execute(admin);
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  const db = createDb(url.toString());
  await migrateToLatest(db as Kysely<unknown>);
  return {
    db,
    url: url.toString(),
    async drop() {
      await db.destroy();
      await sql`drop database if exists ${sql.id(name)} with (force)`.execute(admin);
      await admin.destroy();
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
 * Starts a worker (running in the background) against the shared Temporal dev server, or over
 * `connections` made by the caller (which `close` then closes).
 */
export async function startTestEngine(
  db: Kysely<TidesyncDatabase>,
  options: Omit<RuntimeOptions, 'db'> & { address?: string; connections?: { native: NativeConnection; client: Connection } } = {},
): Promise<TestEngine> {
  const address = options.address ?? requireEnv('TEMPORAL_ADDRESS');
  const runtime = await createRuntime({ db, ...options });
  const taskQueue = `test-${randomBytes(4).toString('hex')}`;
  const nativeConnection = options.connections?.native ?? (await NativeConnection.connect({ address }));
  const worker = await createWorker({ runtime, connection: nativeConnection, taskQueue });
  const running = worker.run();
  const connection = options.connections?.client ?? (await Connection.connect({ address }));
  const temporal = new Client({ connection });
  const client = new TidesyncClient({ runtime, db, temporal, taskQueue });
  return {
    runtime,
    worker,
    temporal,
    client,
    taskQueue,
    async close() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await nativeConnection.close();
      await connection.close();
    },
  };
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes (then throws with `what`). */
export async function waitFor<T>(what: string, check: () => Promise<T | false | null | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
