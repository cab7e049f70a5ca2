/**
 * `tidesync dev` / `npm run demo`: brings up the embedded stack, seeds the demo, runs the worker,
 * exports every contact with a progress bar, checks the remote against the local table, and prints
 * a summary with the Temporal UI address.
 */
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { SingleBar } from 'cli-progress';
import type { Kysely } from 'kysely';
import { TidesyncClient } from './client';
import { compareRemoteWithLocal, localContactIds, setupDemo } from './connectors/demo/demo-setup';
import { createDb } from './db/connect';
import { migrateToLatest } from './db/migrations';
import { createRuntime } from './runtime';
import { OutboxRelay } from './outbox/relay';
import { onShutdown, startDevStack } from './stack/dev-stack';
import { tidesyncHome } from './stack/paths';
import { createWorker } from './worker';
import { readConfig } from './config';

/** Options of `runDemo`. */
export interface DemoOptions {
  /** Exit after the exports finish instead of keeping the worker running. */
  readonly once: boolean;
  /** Print the summary as one JSON line (last line of stdout); progress goes to stderr. */
  readonly json: boolean;
  /** Temporal Web UI port of the dev server. */
  readonly uiPort: number;
  /** How many contacts to seed into an empty table. */
  readonly contacts: number;
  /** Make the demo CRM fail a few requests (503s and a 429) so retries show in the UI. */
  readonly faults: boolean;
  /** Name of the demo integration (workflow ids include it); default `demo`. */
  readonly integration?: string;
}

/** What the demo prints at the end. */
export interface DemoSummary {
  contacts: number;
  exported: number;
  skipped: number;
  failed: number;
  remoteMatchesLocal: boolean;
  mismatches: number;
  faultsInjected: number;
  /** How many requests the demo CRM actually failed (all retried by Temporal). */
  faultsServed: number;
  stackStartMs: number;
  exportMs: number;
  wallMs: number;
  temporalUi: string | null;
  temporalAddress: string;
}

/**
 * Runs the demo; resolves with its summary once everything is shut down. Ctrl-C (or SIGTERM) at any
 * point stops the parts in order (worker, demo CRM, database pool, then the servers) and exits 130.
 */
export async function runDemo(options: DemoOptions): Promise<DemoSummary> {
  const started = Date.now();
  const say = (line: string) => (options.json ? process.stderr : process.stdout).write(`${line}\n`);
  const config = readConfig();
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
  const checkInterrupted = () => {
    if (interrupted) throw new Error('interrupted');
  };
  const cleanups: Array<() => Promise<unknown>> = [];
  try {
    const stack = await startDevStack({ uiPort: options.uiPort, log: say, handleSignals: false });
    cleanups.push(() => stack.stop());
    checkInterrupted();
    const stackStartMs = Date.now() - started;
    say(`stack ready in ${stackStartMs} ms`);
    const db = createDb(stack.databaseUrl);
    checkInterrupted();
    cleanups.unshift(() => db.destroy());
    await migrateToLatest(db as Kysely<unknown>);

    const demo = await setupDemo({
      db,
      contacts: options.contacts,
      dataFile: path.join(tidesyncHome(), 'demo-crm.json'),
      integrationName: options.integration ?? 'demo',
    });
    cleanups.unshift(() => demo.remote.stop());
    say(`demo CRM listening on ${demo.remote.url}${demo.seeded ? `; seeded ${demo.seeded} contacts` : ''}`);

    const runtime = await createRuntime({ db, jobDirs: config.jobDirs });
    const nativeConnection = await NativeConnection.connect({ address: stack.temporalAddress });
    cleanups.unshift(() => nativeConnection.close());
    const worker = await createWorker({
      runtime,
      connection: nativeConnection,
      namespace: stack.namespace,
      taskQueue: config.taskQueue,
    });
    const workerDone = worker.run();
    cleanups.unshift(async () => {
      // The SDK starts its own shutdown on SIGINT/SIGTERM; only ask when it has not.
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await workerDone;
    });
    const connection = await Connection.connect({ address: stack.temporalAddress });
    cleanups.unshift(() => connection.close());
    const client = new TidesyncClient({
      runtime,
      db,
      temporal: new Client({ connection, namespace: stack.namespace }),
      taskQueue: config.taskQueue,
    });

    demo.remote.resetStats();
    // Outbox rows (from enqueueExport or capture triggers) are exported while the demo runs.
    const relay = new OutboxRelay({ db, databaseUrl: stack.databaseUrl, client, log: say });
    relay.start();
    cleanups.unshift(() => relay.stop());

    let faultsInjected = 0;
    if (options.faults) {
      // Only writes fail: reads (the check below) must see the real data.
      demo.remote.injectFault({ kind: '5xx', status: 503, count: 3, method: 'POST' });
      demo.remote.injectFault({ kind: '429', retryAfterSeconds: 1, count: 1, method: 'POST' });
      faultsInjected = 4;
      say('the demo CRM will fail 4 requests (3 x 503, 1 x 429 Retry-After: 1); watch them retry in the UI');
    }

    const exportStarted = Date.now();
    const ids = await localContactIds(db);
    const scheduled = await client.scheduleExports({ integration: demo.integration.name, connector: 'contact', ids });
    const bar = new SingleBar({
      format: 'exporting contacts [{bar}] {value}/{total}  written {written}  skipped {skipped}  failed {failed}',
      stream: process.stderr,
      hideCursor: true,
      noTTYOutput: false,
    });
    const totals = { written: 0, skipped: 0, failed: 0 };
    bar.start(scheduled.length, 0, totals);
    const outcomes = await Promise.race([
      stopRequested.then(() => []),
      Promise.all(
      scheduled.map(async (s) => {
        const outcome = await client.waitForExport(s);
        if (outcome.ok) {
          totals.written += outcome.counters.written;
          totals.skipped += outcome.counters.skipped;
          totals.failed += outcome.counters.failed;
        } else {
          totals.failed += 1;
        }
        bar.increment(1, totals);
        return outcome;
      }),
      ),
    ]);
    bar.stop();
    checkInterrupted();
    const exportMs = Date.now() - exportStarted;
    for (const o of outcomes) if (!o.ok) say(`  ${o.workflowId} failed: ${o.error}`);

    // Faults not used up (nothing needed a create) must not hit the read-back.
    demo.remote.clearFaults();
    const faultsServed = demo.remote.stats().faultsServed;
    const comparison = await compareRemoteWithLocal(demo, db);
    for (const m of comparison.mismatches.slice(0, 10)) say(`  contact ${m.id}: ${m.problem}`);
    const summary: DemoSummary = {
      contacts: ids.length,
      exported: totals.written,
      skipped: totals.skipped,
      failed: totals.failed,
      remoteMatchesLocal: comparison.matches,
      mismatches: comparison.mismatches.length,
      faultsInjected,
      faultsServed,
      stackStartMs,
      exportMs,
      wallMs: Date.now() - started,
      temporalUi: stack.uiUrl,
      temporalAddress: stack.temporalAddress,
    };
    say(
      `exported ${summary.exported}, skipped ${summary.skipped} (unchanged), failed ${summary.failed} of ${summary.contacts} contacts in ${exportMs} ms; ` +
        `remote ${summary.remoteMatchesLocal ? 'matches' : 'DOES NOT match'} local`,
    );
    if (stack.uiUrl) {
      say(`inspect the runs: ${stack.uiUrl}/namespaces/${stack.namespace}/workflows?query=${encodeURIComponent(`TidesyncIntegration="${demo.integration.name}"`)}`);
    }
    if (!options.once) {
      say(
        'worker and outbox relay running; export more with `npx tidesync export demo contact <id>`, or capture changes with ' +
          '`npx tidesync capture install --integration demo --connector contact`, in another terminal. Ctrl-C to stop.',
      );
      await stopRequested;
    }
    summary.wallMs = Date.now() - started;
    return summary;
  } finally {
    if (interrupted) say('stopping...');
    for (const cleanup of cleanups) {
      await cleanup().catch((err: unknown) => say(`cleanup failed: ${(err as Error).message}`));
    }
    unregister();
    cleanedUp();
  }
}
