/**
 * Brings a soak's stack up in a fresh folder: its own PostgreSQL and Temporal dev server, tidesync
 * for the application's side (the client, no worker), the demo CRM in process with its journal
 * data file, the demo integration with a short retry window and probe interval, the worker as
 * a process of its own running the compiled CLI on the demo config, and that CLI for commands.
 */
import net from 'node:net';
import path from 'node:path';
import type { Kysely } from 'kysely';
import { type Tidesync, openDatabases, resolveTemporalSettings, startTidesync } from 'tidesync';
import { demoDeclarations } from '../../examples/demo';
import { DEMO_TOKEN_ENV, type Demo, setupDemo } from '../../examples/demo/demo-setup';
import { ensureContactsTable } from '../../examples/demo/local-contacts';
import type { Cleanups } from '../latency/environment';
import { openBenchWorkspace, writeWorkflowBundle } from '../support/workspace';
import { ChaosCli } from './cli';
import { WriteObserver } from './remote-watch';
import { ChaosServers } from './servers';
import { WorkerProcess } from './worker-process';

/** The integration the soak exports to. */
export const CHAOS_INTEGRATION = 'chaos';

/** The integration's settings for the soak: short, so an outage can outlast the window in minutes. */
export const CHAOS_SETTINGS = {
  retryWindowMs: 20_000,
  probeIntervalMs: 2_000,
  breakerThreshold: 10,
  /** The writer gives up on a request after this long (the demo's default is 10 s). */
  requestTimeoutMs: 3_000,
} as const;

/** A running soak stack. */
export interface ChaosStack {
  readonly folder: string;
  readonly servers: ChaosServers;
  readonly tidesync: Tidesync;
  /** The application's own pool, which makes the changes. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly appDb: Kysely<any>;
  readonly demo: Demo;
  readonly writes: WriteObserver;
  readonly worker: WorkerProcess;
  /** The command line, with the worker's environment. */
  readonly cli: ChaosCli;
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Starts everything, registering each part's cleanup in `cleanups` (run newest first). */
export async function startChaosStack(
  root: string,
  cleanups: Cleanups,
  signal: AbortSignal,
  log: (line: string) => void,
): Promise<ChaosStack> {
  const { folder, ledger } = await openBenchWorkspace('chaos', log);

  log(`starting postgres and temporal in ${folder}`);
  const [servers, bundlePath] = await Promise.all([ChaosServers.start(folder, ledger, log), writeWorkflowBundle(root, folder)]);
  cleanups.add('stop postgres and temporal', () => servers.stop());

  const temporal = await resolveTemporalSettings({ address: servers.temporalAddress }, {});
  if (!temporal) throw new Error('unreachable: an address was given');
  const tidesync = await startTidesync(demoDeclarations, {
    servers: { databaseUrl: servers.databaseUrl, temporal, uiUrl: null },
    poolSize: 4,
    log,
  });
  cleanups.add('close tidesync', () => tidesync.close());
  const app = openDatabases(servers.databaseUrl, { max: 8 });
  cleanups.add('close the application pool', () => app.destroy());
  // The worker checks the tables its jobs read when it starts.
  await ensureContactsTable(app.app);

  const writes = new WriteObserver();
  const demo = await setupDemo({
    db: app.app,
    client: tidesync.client,
    contacts: 0,
    integrationName: CHAOS_INTEGRATION,
    dataFile: path.join(folder, 'demo-crm.json'),
    onWrite: writes.onWrite,
  });
  cleanups.add('stop the demo CRM', () => demo.remote.stop());
  const integration = await tidesync.client.upsertIntegration({
    type: demo.integration.type,
    name: CHAOS_INTEGRATION,
    transport: { baseUrl: demo.remote.url, timeoutMs: CHAOS_SETTINGS.requestTimeoutMs },
    secretRef: demo.integration.secretRef,
    retryWindowMs: CHAOS_SETTINGS.retryWindowMs,
    probeIntervalMs: CHAOS_SETTINGS.probeIntervalMs,
    breakerThreshold: CHAOS_SETTINGS.breakerThreshold,
  });

  const env = {
    TIDESYNC_CONFIG: path.join(root, '.build', 'examples', 'demo', 'tidesync.config.js'),
    DATABASE_URL: servers.databaseUrl,
    TEMPORAL_ADDRESS: servers.temporalAddress,
    [DEMO_TOKEN_ENV]: process.env[DEMO_TOKEN_ENV] ?? '',
    // The soak's client talks to Temporal without a codec: so must the worker and the commands.
    TIDESYNC_CODEC_KEY: '',
  };
  const worker = new WorkerProcess({
    root,
    env: { ...env, TIDESYNC_WORKFLOW_BUNDLE: bundlePath },
    metricsPort: await freePort(),
    logFile: path.join(folder, 'worker.log'),
    ledger,
    log,
    signal,
  });
  cleanups.add('stop the worker', () => worker.stop());
  log(`worker ready after ${await worker.start()} ms; demo CRM on ${demo.remote.url}`);
  const cli = new ChaosCli(root, env);
  return { folder, servers, tidesync, appDb: app.app, demo: { ...demo, integration }, writes, worker, cli };
}
