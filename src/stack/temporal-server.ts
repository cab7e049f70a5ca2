/**
 * The Temporal dev server (`temporal server start-dev`), with tidesync's search attributes
 * registered, or the one the SDK downloads when no CLI could be found.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { TypedSearchAttributes, type SearchAttributeType } from '@temporalio/common';
// Not re-exported by the package index; the SDK's own testing package imports it from here too.
import type { SearchAttributeKey } from '@temporalio/common/lib/search-attributes';
import { ConfigurationError } from '../errors';
import { SEARCH_ATTRIBUTES } from '../search-attributes';
import { logFilePath, readLogTail, tidesyncHome } from './paths';
import { getFreePort, isListening, isPortFree, isProcessAlive, stopChild, stopPid, trackChild, waitForExit } from './ports';
import { findTemporalCli, temporalCliNotFound, type TemporalCli } from './temporal-cli';

/** The Temporal UI's usual port; the caller may pass another when it is taken. */
export const DEFAULT_UI_PORT = 8233;

/** The namespace the dev server always creates. */
export const DEFAULT_NAMESPACE = 'default';

/**
 * SQLite settings for the dev server's database. WAL lets readers (UI, list calls) run beside the
 * writer; synchronous=OFF skips fsync: a killed server loses nothing, only an OS crash could.
 */
export const SQLITE_PRAGMAS: readonly string[] = ['journal_mode=WAL', 'synchronous=OFF'];

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 60_000;
// The server stops its internal services one by one; it takes about a second.
const STOP_STEPS = [['SIGTERM', 10_000]] as const;

/** Options of {@link startTemporalDevServer}. */
export interface TemporalDevServerOptions {
  /** The CLI from {@link findTemporalCli}. */
  readonly cli: TemporalCli;
  /** SQLite file that keeps workflows across restarts; default none (in memory). */
  readonly dbFilename?: string;
  /** Frontend gRPC port on 127.0.0.1; default a free one. */
  readonly port?: number;
  /** Serve the web UI; default true. */
  readonly ui?: boolean;
  /** UI port; default {@link DEFAULT_UI_PORT}. Must be free: we report it rather than pick another. */
  readonly uiPort?: number;
  /** Namespace to create; default {@link DEFAULT_NAMESPACE}. */
  readonly namespace?: string;
  /** Custom search attributes to register; default tidesync's {@link SEARCH_ATTRIBUTES}. */
  readonly searchAttributes?: readonly SearchAttributeKey<SearchAttributeType>[];
  /** Where the server's output goes; default `<home>/logs/temporal.log`. */
  readonly logFile?: string;
  /** A codec server the web UI decodes payloads through (`tidesync codec-server`); default none. */
  readonly uiCodecEndpoint?: string;
}

/** A running Temporal dev server. */
export interface TemporalDevServer {
  /** gRPC address, `host:port`. */
  readonly address: string;
  /** The namespace created at start. */
  readonly namespace: string;
  /** Web UI url, or null when the UI is off. */
  readonly uiUrl: string | null;
  /** The server's pid; null when the SDK runs it. */
  readonly pid: number | null;
  /** Stops the server (SIGTERM, then SIGKILL after a grace period); safe to call more than once. */
  stop(): Promise<void>;
}

interface Settings {
  readonly port: number | undefined;
  readonly ui: boolean;
  readonly uiPort: number;
  readonly namespace: string;
  readonly attributes: readonly SearchAttributeKey<SearchAttributeType>[];
}

function settingsOf(options: TemporalDevServerOptions): Settings {
  return {
    port: options.port,
    ui: options.ui ?? true,
    uiPort: options.uiPort ?? DEFAULT_UI_PORT,
    namespace: options.namespace ?? DEFAULT_NAMESPACE,
    attributes: options.searchAttributes ?? SEARCH_ATTRIBUTES,
  };
}

/**
 * Ready means what callers need: the frontend answers and every search attribute is registered
 * (the CLI registers them after the frontend starts listening).
 */
async function isReady(address: string, settings: Settings): Promise<boolean> {
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address, connectTimeout: '2s' });
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: settings.namespace });
    return settings.attributes.every(({ name }) => customAttributes && name in customAttributes);
  } catch {
    return false;
  } finally {
    await connection?.close().catch(() => undefined);
  }
}

/**
 * A second server on the same SQLite file would corrupt it, and a server whose owner was SIGKILLed
 * keeps running: the `<db>.owner` file names both pids so we can tell the two cases apart.
 */
async function claimDatabase(dbFilename: string): Promise<string> {
  const ownerFile = `${dbFilename}.owner`;
  const [serverPid = 0, ownerPid = 0] = (await readFile(ownerFile, 'utf8').catch(() => '')).split(/\s+/).map(Number);
  // After a reboot the pid may belong to anything: only a server on this very file is ours.
  const cmdline = await readFile(`/proc/${serverPid}/cmdline`, 'utf8').catch(() => null);
  if (serverPid > 0 && isProcessAlive(serverPid) && (cmdline === null || cmdline.includes(dbFilename))) {
    if (ownerPid > 0 && isProcessAlive(ownerPid)) {
      throw new ConfigurationError(
        `temporal database ${dbFilename} is in use by temporal pid ${serverPid} started by process ${ownerPid}; stop it (or the dev stack) or set TEMPORAL_ADDRESS`,
      );
    }
    // Orphaned by a killed owner: stop it.
    await stopPid(serverPid, STOP_STEPS);
  }
  return ownerFile;
}

/** The dev server would fail on a taken UI port with a bare bind error: say which port and what to do. */
async function checkUiPort(settings: Settings): Promise<void> {
  if (settings.ui && !(await isPortFree(settings.uiPort, HOST))) {
    throw new ConfigurationError(
      `temporal ui port ${settings.uiPort} on ${HOST} is already in use (another dev server?); pass another ui port or turn the ui off`,
    );
  }
}

async function spawnServer(
  cliPath: string,
  options: TemporalDevServerOptions,
  settings: Settings,
  port: number,
  logFile: string,
): Promise<ChildProcess> {
  const args = ['server', 'start-dev', '--ip', HOST, '--port', String(port), '--namespace', settings.namespace, '--log-level', 'warn'];
  args.push(...(settings.ui ? ['--ui-port', String(settings.uiPort)] : ['--headless']));
  if (settings.ui && options.uiCodecEndpoint) args.push('--ui-codec-endpoint', options.uiCodecEndpoint);
  if (options.dbFilename) args.push('--db-filename', options.dbFilename);
  for (const pragma of SQLITE_PRAGMAS) args.push('--sqlite-pragma', pragma);
  for (const { name, type } of settings.attributes)
    args.push('--search-attribute', `${name}=${TypedSearchAttributes.toMetadataType(type)}`);
  const out = await open(logFile, 'a');
  try {
    // Output to a file, not a pipe: it survives us, and a full pipe can never stall the server.
    const child = spawn(cliPath, args, { stdio: ['ignore', out.fd, out.fd], detached: false });
    child.once('error', () => undefined); // a spawn failure shows as an exit, reported with the log
    trackChild(child, 'SIGKILL');
    return child;
  } finally {
    await out.close();
  }
}

async function startBinary(cliPath: string, options: TemporalDevServerOptions, settings: Settings): Promise<TemporalDevServer> {
  const logFile = options.logFile ?? logFilePath(tidesyncHome(), 'temporal');
  await mkdir(path.dirname(logFile), { recursive: true });
  if (options.dbFilename) await mkdir(path.dirname(options.dbFilename), { recursive: true });
  // Claim first: an orphaned server of this database may be what holds the UI port.
  const ownerFile = options.dbFilename ? await claimDatabase(options.dbFilename) : undefined;
  await checkUiPort(settings);

  for (let attempt = 1; ; attempt++) {
    const port = settings.port ?? (await getFreePort(HOST));
    const address = `${HOST}:${port}`;
    const logOffset = await stat(logFile).then(
      (s) => s.size,
      () => 0,
    );
    const child = await spawnServer(cliPath, options, settings, port, logFile);
    // Right away, not once ready: a kill during startup must leave an orphan we recognise.
    if (ownerFile) await writeFile(ownerFile, `${child.pid} ${process.pid}\n`);
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let failure: string | undefined;
    while (!failure && !((await isListening(port, HOST)) && (await isReady(address, settings)))) {
      if (await waitForExit(child, 100)) failure = `exited (${child.exitCode ?? child.signalCode})`;
      else if (Date.now() > deadline) failure = `not ready after ${READY_TIMEOUT_MS} ms`;
    }
    if (!failure) {
      let stopping: Promise<void> | undefined;
      const stop = (): Promise<void> =>
        (stopping ??= (async () => {
          await stopChild(child, STOP_STEPS);
          const owner = ownerFile ? await readFile(ownerFile, 'utf8').catch(() => '') : '';
          if (ownerFile && owner.trim() === `${child.pid} ${process.pid}`) await rm(ownerFile, { force: true });
        })());
      const uiUrl = settings.ui ? `http://${HOST}:${settings.uiPort}` : null;
      return { address, namespace: settings.namespace, uiUrl, pid: child.pid ?? null, stop };
    }
    await stopChild(child, STOP_STEPS);
    const output = await readLogTail(logFile, logOffset);
    // A free port we chose can be taken before the server binds it: pick another one.
    if (settings.port === undefined && attempt < 3 && /address already in use/i.test(output)) continue;
    throw new ConfigurationError(`temporal dev server (${cliPath}) on ${address} ${failure}: ${output || 'no output'}`);
  }
}

/** The SDK-download fallback: the SDK fetches a CLI build (needs internet) and runs it. */
async function startWithSdk(
  cli: Extract<TemporalCli, { kind: 'sdk-download' }>,
  options: TemporalDevServerOptions,
  settings: Settings,
): Promise<TemporalDevServer> {
  try {
    // A dev dependency: loaded only here so that a production install works without it.
    const { TestWorkflowEnvironment } = await import('@temporalio/testing');
    const env = await TestWorkflowEnvironment.createLocal({
      server: {
        executable: { type: 'cached-download', downloadDir: cli.downloadDir },
        ip: HOST,
        namespace: settings.namespace,
        ui: settings.ui,
        ...(settings.ui ? { uiPort: settings.uiPort } : {}),
        ...(settings.port === undefined ? {} : { port: settings.port }),
        ...(options.dbFilename ? { dbFilename: options.dbFilename } : {}),
        searchAttributes: [...settings.attributes],
        extraArgs: [
          ...SQLITE_PRAGMAS.flatMap((pragma) => ['--sqlite-pragma', pragma]),
          ...(settings.ui && options.uiCodecEndpoint ? ['--ui-codec-endpoint', options.uiCodecEndpoint] : []),
        ],
      },
    });
    let stopping: Promise<void> | undefined;
    const uiUrl = settings.ui ? `http://${HOST}:${settings.uiPort}` : null;
    return { address: env.address, namespace: settings.namespace, uiUrl, pid: null, stop: () => (stopping ??= env.teardown()) };
  } catch (error) {
    throw temporalCliNotFound([...cli.tried, `sdk download: ${(error as Error).message}`], { cause: error });
  }
}

/**
 * Starts `temporal server start-dev` on 127.0.0.1 and resolves once it serves requests with the
 * search attributes registered; fails fast with the server's output when it exits.
 */
export async function startTemporalDevServer(options: TemporalDevServerOptions): Promise<TemporalDevServer> {
  const settings = settingsOf(options);
  if (options.cli.kind === 'sdk-download') {
    await checkUiPort(settings);
    return startWithSdk(options.cli, options, settings);
  }
  return startBinary(options.cli.path, options, settings);
}

/** The Temporal server to use, and how to stop it when we started it. */
export interface ResolvedTemporal {
  /** gRPC address, `host:port`. */
  readonly address: string;
  /** Namespace to run in. */
  readonly namespace: string;
  /** Web UI url when we started a server with its UI, else null. */
  readonly uiUrl: string | null;
  /** True when a dev server was started for it. */
  readonly started: boolean;
  /** Stops the dev server; does nothing for `TEMPORAL_ADDRESS`. */
  stop(): Promise<void>;
}

/** Options of {@link resolveTemporal}. */
export interface ResolveTemporalOptions {
  /** Serve the web UI; default true. */
  readonly ui?: boolean;
  /** UI port; default {@link DEFAULT_UI_PORT}. */
  readonly uiPort?: number;
  /** The tidesync home folder; default {@link tidesyncHome}. */
  readonly home?: string;
  /** Environment to read TEMPORAL_ADDRESS and the CLI settings from; default process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** A codec server for the web UI of a dev server we start. */
  readonly uiCodecEndpoint?: string;
}

/**
 * `TEMPORAL_ADDRESS` (and `TEMPORAL_NAMESPACE`, default `default`) when set; else a dev server
 * keeping its state in `<home>/temporal.db`.
 */
export async function resolveTemporal(options: ResolveTemporalOptions = {}): Promise<ResolvedTemporal> {
  const env = options.env ?? process.env;
  const address = env.TEMPORAL_ADDRESS;
  if (address) {
    const namespace = env.TEMPORAL_NAMESPACE || DEFAULT_NAMESPACE;
    return { address, namespace, uiUrl: null, started: false, stop: async () => undefined };
  }
  const home = options.home ?? tidesyncHome(env);
  const cli = await findTemporalCli({ home, env });
  const server = await startTemporalDevServer({
    cli,
    dbFilename: path.join(home, 'temporal.db'),
    logFile: logFilePath(home, 'temporal'),
    ...(options.ui === undefined ? {} : { ui: options.ui }),
    ...(options.uiPort === undefined ? {} : { uiPort: options.uiPort }),
    ...(options.uiCodecEndpoint === undefined ? {} : { uiCodecEndpoint: options.uiCodecEndpoint }),
  });
  return { address: server.address, namespace: server.namespace, uiUrl: server.uiUrl, started: true, stop: server.stop };
}
