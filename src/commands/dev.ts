/**
 * `tidesync dev`: the embedded stack (PostgreSQL, the Temporal dev server and its Web UI), the
 * application's worker and outbox relay on it, and the config's `dev` hook (the demo seeds its
 * contacts, starts its CRM and exports them). Runs until Ctrl-C, or exits after the hook with
 * `--once`. Ctrl-C stops the parts in order: relay, worker, connections, then the servers.
 */
import type { DevHook, DevResult } from '../config/define-config';
import { openDatabases } from '../store/db';
import { resolveServers } from '../config/servers';
import { type Tidesync, startTidesync } from '../start';
import { tuneWorkerHeap } from '../worker';
import { startConfigCodecServer, uiOrigins } from './codec-server';
import { loadCheckedConfig } from './connect';

/** Options of `tidesync dev`. */
export interface DevOptions {
  /** Exit after the hook finishes instead of running until Ctrl-C. */
  readonly once: boolean;
  /** Print the hook's summary as one JSON line (the last line of stdout); progress goes to stderr. */
  readonly json: boolean;
  /** Temporal Web UI port of the dev server. */
  readonly uiPort: number;
  /** Words for the hook (options tidesync dev does not know). */
  readonly args: readonly string[];
}

/** Runs the dev stack and the hook; resolves with the exit code once everything is shut down. */
export async function devCommand(options: DevOptions): Promise<number> {
  const started = Date.now();
  const say = (line: string) => (options.json ? process.stderr : process.stdout).write(`${line}\n`);
  // The worker runs in this process.
  tuneWorkerHeap();
  // The config is checked before any server starts.
  const { file, config } = await loadCheckedConfig();
  const { onShutdown, startDevStack } = await import('../stack/dev-stack');
  let interrupted = false;
  let requestStop = () => undefined as void;
  const stopRequested = new Promise<void>((resolve) => (requestStop = resolve));
  let cleanedUp = () => undefined as void;
  const done = new Promise<void>((resolve) => (cleanedUp = resolve));
  const unregister = onShutdown(async () => {
    interrupted = true;
    requestStop();
    await done;
  });
  const cleanups: Array<() => Promise<unknown>> = [];
  let tidesync: Tidesync | undefined;
  try {
    // With a codec, the UI reads the encrypted histories through a codec server: start it first.
    const codecServer = config.codec
      ? (await startConfigCodecServer(config, { port: 0, origins: uiOrigins(options.uiPort), log: say })).server
      : null;
    if (codecServer) cleanups.push(() => codecServer.close());
    const stack = await startDevStack({
      uiPort: options.uiPort,
      log: say,
      handleSignals: false,
      ...(codecServer ? { uiCodecEndpoint: codecServer.url } : {}),
    });
    cleanups.unshift(() => stack.stop());
    if (interrupted) return 130;
    const stackStartMs = Date.now() - started;
    say(`stack ready in ${stackStartMs} ms`);
    if (codecServer) say(`codec server on ${codecServer.url}: the Web UI (and temporal --codec-endpoint) decode histories through it`);
    const env = {
      ...process.env,
      DATABASE_URL: stack.databaseUrl,
      TEMPORAL_ADDRESS: stack.temporalAddress,
      TEMPORAL_NAMESPACE: stack.namespace,
    };
    const servers = { ...(await resolveServers(config, env)), uiUrl: stack.uiUrl };
    if (config.dev?.setup) await runSetup(config.dev.setup, servers.databaseUrl, options.args);
    tidesync = await startTidesync(config, { servers, worker: true, relay: true, log: say });
    const running = tidesync;
    cleanups.unshift(() => running.close());
    say(
      `worker and outbox relay running on task queue '${tidesync.taskQueue}' (config: ${file ?? 'none'}; jobs: ${[...tidesync.runtime.jobs.keys()].join(', ') || 'none'})`,
    );

    let result: DevResult = { ok: true, summary: {} };
    if (config.dev?.run) {
      const hook = config.dev.run({ tidesync, args: options.args, log: say, uiUrl: stack.uiUrl, stopRequested });
      // A hook still running at Ctrl-C is abandoned, but what it started is still stopped.
      hook.then((r) => r.close && cleanups.unshift(r.close)).catch(() => undefined);
      result = await Promise.race([hook, stopRequested.then(() => ({ ok: false, summary: { interrupted: true } }))]);
    }
    if (interrupted) return 130;
    const summary = {
      ...result.summary,
      stackStartMs,
      wallMs: Date.now() - started,
      temporalUi: stack.uiUrl,
      codecServer: codecServer?.url ?? null,
      temporalAddress: stack.temporalAddress,
    };
    if (stack.uiUrl) say(`Temporal Web UI: ${stack.uiUrl}/namespaces/${stack.namespace}/workflows`);
    if (!options.once) {
      say('running until Ctrl-C; in another terminal the other commands (`npx tidesync status`, `export`, ...) use this stack');
      await stopRequested;
    }
    if (options.json) console.log(JSON.stringify({ ...summary, wallMs: Date.now() - started }));
    return result.ok ? 0 : 1;
  } finally {
    if (interrupted) say('stopping...');
    for (const cleanup of cleanups) {
      await cleanup().catch((err: unknown) => say(`cleanup failed: ${(err as Error).message}`));
    }
    unregister();
    cleanedUp();
  }
}

/** Runs the config's dev setup (tables the jobs read) on a connection of its own. */
async function runSetup(setup: NonNullable<DevHook['setup']>, databaseUrl: string, args: readonly string[]): Promise<void> {
  const databases = openDatabases(databaseUrl, { max: 2 });
  try {
    await setup({ db: databases.app, args });
  } finally {
    await databases.destroy();
  }
}
