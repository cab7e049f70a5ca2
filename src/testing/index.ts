/**
 * `tidesync/testing`: what an application needs to test its own connectors against real servers —
 * an embedded PostgreSQL and a Temporal dev server started for the test run, a fresh database per
 * test file, tidesync started on them with a worker, and a helper to run one export to the end.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { ExportOutcome, ExportRequest } from '../client';
import type { TidesyncConfig } from '../config/define-config';
import type { EmbeddedPostgres, EmbeddedPostgresOptions } from '../stack/postgres';
import type { TemporalDevServer, TemporalDevServerOptions } from '../stack/temporal-server';
import { resolveTemporalSettings } from '../temporal/connection';
import { type StartOptions, type Tidesync, startTidesync } from '../start';

/** Servers for a test run. */
export interface TestServers {
  readonly databaseUrl: string;
  readonly temporalAddress: string;
  /** Stops what was started (nothing for servers given by `DATABASE_URL` / `TEMPORAL_ADDRESS`). */
  stop(): Promise<void>;
}

/**
 * Starts an embedded PostgreSQL (fsync off, in a temporary folder) unless `DATABASE_URL` is set,
 * and a Temporal dev server (in memory, no UI) unless `TEMPORAL_ADDRESS` is set, side by side.
 */
export async function startTestServers(env: NodeJS.ProcessEnv = process.env): Promise<TestServers> {
  const tempDir = await mkdtemp(path.join(os.tmpdir(), 'tidesync-test-'));
  // mkdtemp makes a 0700 folder; PostgreSQL runs as the 'postgres' user when we are root.
  await chmod(tempDir, 0o755);
  const { startEmbeddedPostgres } = await import('../stack/postgres');
  const { startTemporalDevServer } = await import('../stack/temporal-server');
  const { findTemporalCli } = await import('../stack/temporal-cli');
  const [postgres, temporal] = await Promise.allSettled([
    env['DATABASE_URL']
      ? undefined
      : startEmbeddedPostgres({ dataDir: path.join(tempDir, 'postgres'), logFile: path.join(tempDir, 'postgres.log'), fast: true }),
    env['TEMPORAL_ADDRESS']
      ? undefined
      : findTemporalCli({ env }).then((cli) => startTemporalDevServer({ cli, ui: false, logFile: path.join(tempDir, 'temporal.log') })),
  ]);
  const stop = async () => {
    await Promise.allSettled([postgres, temporal].map(async (r) => (r.status === 'fulfilled' ? r.value?.stop() : undefined)));
    await rm(tempDir, { recursive: true, force: true });
  };
  const failed = [postgres, temporal].find((r) => r.status === 'rejected');
  if (failed?.status === 'rejected') {
    await stop();
    throw failed.reason;
  }
  const databaseUrl = postgres.status === 'fulfilled' && postgres.value ? postgres.value.url : (env['DATABASE_URL'] as string);
  const temporalAddress = temporal.status === 'fulfilled' && temporal.value ? temporal.value.address : (env['TEMPORAL_ADDRESS'] as string);
  return { databaseUrl, temporalAddress, stop };
}

export type { EmbeddedPostgres, EmbeddedPostgresOptions, TemporalDevServer };

/**
 * Starts one embedded PostgreSQL on `options.dataDir` (initialised when empty, reused otherwise),
 * for tests that stop a server and start it again: `stop()` is a fast shutdown, and a start on
 * the same folder and port keeps both the data and every url.
 */
export async function startTestPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const { startEmbeddedPostgres } = await import('../stack/postgres');
  return startEmbeddedPostgres(options);
}

/**
 * Starts one Temporal dev server without its UI, found the way `startTestServers` finds it. With a
 * `dbFilename`, a server killed and started again on that file and port keeps every workflow.
 */
export async function startTestTemporal(
  options: Omit<TemporalDevServerOptions, 'cli' | 'ui' | 'uiPort' | 'uiCodecEndpoint'>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<TemporalDevServer> {
  const { startTemporalDevServer } = await import('../stack/temporal-server');
  const { findTemporalCli } = await import('../stack/temporal-cli');
  return startTemporalDevServer({ ...options, cli: await findTemporalCli({ env }), ui: false });
}

/** A database of its own for one test file, on the server of `baseUrl`. */
export interface TestDatabase {
  readonly url: string;
  /** Drops the database (closing its connections). */
  drop(): Promise<void>;
}

/** Creates a fresh, empty database next to `baseUrl`'s, so test files can run in parallel. */
export async function createTestDatabase(baseUrl: string): Promise<TestDatabase> {
  const name = `tidesync_test_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${pg.escapeIdentifier(name)}`);
  } finally {
    await admin.end();
  }
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: baseUrl });
      await client.connect();
      try {
        await client.query(`drop database if exists ${pg.escapeIdentifier(name)} with (force)`);
      } finally {
        await client.end();
      }
    },
  };
}

/** Options of `startTestTidesync`. */
export interface TestTidesyncOptions extends Omit<StartOptions, 'servers'> {
  readonly databaseUrl: string;
  readonly temporalAddress: string;
}

/**
 * Starts tidesync for `config` with a worker on a task queue of its own (so test files never
 * take each other's tasks) and job parameters checked against the database.
 */
export async function startTestTidesync(config: TidesyncConfig, options: TestTidesyncOptions): Promise<Tidesync> {
  const { databaseUrl, temporalAddress, ...start } = options;
  const temporal = await resolveTemporalSettings({ ...config.temporal, address: temporalAddress }, {});
  if (!temporal) throw new Error('unreachable: an address was given');
  return startTidesync(config, {
    worker: true,
    taskQueue: `test-${randomBytes(4).toString('hex')}`,
    ...start,
    servers: { databaseUrl, temporal, uiUrl: null },
  });
}

/** Schedules one entity's export and waits for its outcome. */
export async function exportAndWait(tidesync: Pick<Tidesync, 'client'>, request: ExportRequest): Promise<ExportOutcome> {
  return tidesync.client.waitForExport(await tidesync.client.scheduleExport(request));
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes (then throws naming `what`). */
export async function waitFor<T>(what: string, check: () => Promise<T | false | null | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
