/**
 * The dev stack: PostgreSQL and Temporal started together for `tidesync dev`, advertised in
 * `<home>/dev-stack.json` so other commands use them instead of starting their own.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ConfigurationError } from '../errors';
import { tidesyncHome } from './paths';
import { isProcessAlive } from './ports';
import { resolveDatabase } from './postgres';
import { resolveTemporal } from './temporal-server';

/** What `<home>/dev-stack.json` holds while a dev stack runs. */
export interface DevStackInfo {
  /** `postgres://` url of the database. */
  readonly databaseUrl: string;
  /** Temporal gRPC address, `host:port`. */
  readonly temporalAddress: string;
  /** Temporal namespace. */
  readonly namespace: string;
  /** Temporal web UI url, or null when it is off or the server is not ours. */
  readonly uiUrl: string | null;
  /** The process that runs the stack; the file is stale once it is gone. */
  readonly pid: number;
}

/** A running dev stack. */
export interface DevStack extends Omit<DevStackInfo, 'pid'> {
  /** Stops both servers and removes the file; safe to call more than once. */
  stop(): Promise<void>;
}

/** Options of {@link startDevStack}. */
export interface DevStackOptions {
  /** Temporal UI port; default 8233. */
  readonly uiPort?: number;
  /** Serve the Temporal UI; default true. */
  readonly ui?: boolean;
  /** A codec server the Temporal UI decodes payloads through; default none. */
  readonly uiCodecEndpoint?: string;
  /** Where progress lines go; default console.log. */
  readonly log?: (line: string) => void;
  /** The tidesync home folder; default {@link tidesyncHome}. */
  readonly home?: string;
  /** Environment (DATABASE_URL, TEMPORAL_ADDRESS, ...); default process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /**
   * Stop the servers on SIGINT/SIGTERM and exit; default true. A caller that must stop its own
   * parts first (the demo stops its worker before the servers) passes false and calls `stop()`.
   */
  readonly handleSignals?: boolean;
}

/** Where a running dev stack advertises itself. */
export function devStackFilePath(home: string = tidesyncHome()): string {
  return path.join(home, 'dev-stack.json');
}

/** The running dev stack's addresses, or null when none runs (no file, or its process is gone). */
export async function readDevStackFile(home: string = tidesyncHome()): Promise<DevStackInfo | null> {
  try {
    const info = JSON.parse(await readFile(devStackFilePath(home), 'utf8')) as Partial<DevStackInfo>;
    const valid = typeof info.pid === 'number' && typeof info.databaseUrl === 'string' && typeof info.temporalAddress === 'string';
    return valid && isProcessAlive(info.pid as number) ? (info as DevStackInfo) : null;
  } catch {
    return null;
  }
}

type ShutdownHook = () => Promise<void> | void;
const shutdownHooks = new Set<ShutdownHook>();
let shuttingDown = false;

function handleSignal(signal: NodeJS.Signals): void {
  const exitCode = signal === 'SIGINT' ? 130 : 143;
  // A second Ctrl-C means "now": exit at once; the 'exit' handler still signals the children.
  if (shuttingDown) process.exit(exitCode);
  shuttingDown = true;
  void Promise.allSettled([...shutdownHooks].map(async (hook) => hook())).then((results) => {
    for (const result of results) {
      if (result.status === 'rejected') console.error(`shutdown: ${String((result.reason as Error)?.message ?? result.reason)}`);
    }
    process.exit(exitCode);
  });
}

/**
 * Runs `hook` on SIGINT or SIGTERM, then exits (130 or 143) once every hook has settled. Installs
 * the signal handlers with the first hook and removes them with the last, restoring the default.
 * Returns a function that unregisters the hook.
 */
export function onShutdown(hook: ShutdownHook): () => void {
  if (shutdownHooks.size === 0) {
    process.on('SIGINT', handleSignal);
    process.on('SIGTERM', handleSignal);
  }
  shutdownHooks.add(hook);
  return () => {
    shutdownHooks.delete(hook);
    if (shutdownHooks.size === 0 && !shuttingDown) {
      process.removeListener('SIGINT', handleSignal);
      process.removeListener('SIGTERM', handleSignal);
    }
  };
}

async function timed<T>(log: (line: string) => void, name: string, start: () => Promise<T>, describe: (value: T) => string): Promise<T> {
  const begin = performance.now();
  const value = await start();
  log(`${name} ready in ${((performance.now() - begin) / 1000).toFixed(1)} s: ${describe(value)}`);
  return value;
}

function firstError(results: PromiseSettledResult<unknown>[]): unknown {
  const errors = results.flatMap((result) => (result.status === 'rejected' ? [result.reason as unknown] : []));
  if (errors.length <= 1) return errors[0];
  const messages = errors.map((error) => (error instanceof Error ? error.message : String(error)));
  return new ConfigurationError(messages.join('; '), { cause: new AggregateError(errors) });
}

/**
 * Starts PostgreSQL and Temporal in parallel (or uses DATABASE_URL / TEMPORAL_ADDRESS), writes
 * `<home>/dev-stack.json`, and stops both on SIGINT/SIGTERM before exiting.
 */
export async function startDevStack(options: DevStackOptions = {}): Promise<DevStack> {
  const env = options.env ?? process.env;
  const home = options.home ?? tidesyncHome(env);
  const log = options.log ?? ((line: string) => console.log(line));
  const running = await readDevStackFile(home);
  if (running) {
    throw new ConfigurationError(`a dev stack already runs (pid ${running.pid}, temporal ${running.temporalAddress}); stop it or use it`);
  }
  await mkdir(home, { recursive: true });

  const results = await Promise.allSettled([
    timed(
      log,
      'postgres',
      () => resolveDatabase({ home, env }),
      (db) => (db.embedded ? `embedded, ${db.url}` : 'DATABASE_URL'),
    ),
    timed(
      log,
      'temporal',
      () =>
        resolveTemporal({
          home,
          env,
          ...(options.ui === undefined ? {} : { ui: options.ui }),
          ...(options.uiPort === undefined ? {} : { uiPort: options.uiPort }),
          ...(options.uiCodecEndpoint === undefined ? {} : { uiCodecEndpoint: options.uiCodecEndpoint }),
        }),
      (t) => (t.started ? `dev server ${t.address}${t.uiUrl ? `, ui ${t.uiUrl}` : ''}` : `TEMPORAL_ADDRESS ${t.address}`),
    ),
  ] as const);
  const [db, temporal] = results;
  if (db.status === 'rejected' || temporal.status === 'rejected') {
    // Never leave the half that did start running.
    await Promise.allSettled([db, temporal].map(async (result) => (result.status === 'fulfilled' ? result.value.stop() : undefined)));
    throw firstError(results);
  }

  const file = devStackFilePath(home);
  const info: DevStackInfo = {
    databaseUrl: db.value.url,
    temporalAddress: temporal.value.address,
    namespace: temporal.value.namespace,
    uiUrl: temporal.value.uiUrl,
    pid: process.pid,
  };
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      unregister();
      await rm(file, { force: true });
      const stopped = await Promise.allSettled([db.value.stop(), temporal.value.stop()]);
      const error = firstError(stopped);
      if (error) throw error;
    })());
  const unregister = options.handleSignals === false ? () => undefined : onShutdown(stop);
  try {
    // 0600: DATABASE_URL may carry a real password.
    await writeFile(file, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
  return { databaseUrl: info.databaseUrl, temporalAddress: info.temporalAddress, namespace: info.namespace, uiUrl: info.uiUrl, stop };
}
