/**
 * The demo's `dev` hook: `tidesync dev` (or `npm run demo`) runs it once the embedded stack, the
 * worker and the relay are up. It seeds the contacts, starts the demo CRM, exports every contact
 * with a progress bar, and checks the remote against the local table.
 * Options (after tidesync dev's own): `--contacts N`, `--no-faults`, `--integration NAME`, and
 * `--no-export` to only seed and serve (then export from another terminal, e.g. with
 * `tidesync export --all demo contact`: one workflow per contact is no way to start with 100,000).
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { SingleBar } from 'cli-progress';
import type { Kysely } from 'kysely';
import { type DevContext, type DevResult, tidesyncHome } from 'tidesync';
import { compareRemoteWithLocal, localContactIds, setupDemo } from './demo-setup';
import { ensureContactsTable, seedContacts } from './local-contacts';

/** What the demo prints at the end (with `--json`, as the last line of stdout). */
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
  exportMs: number;
}

/** What `--no-export` reports: the contacts are there, nothing was exported. */
export interface SeedOnlySummary {
  contacts: number;
  seeded: number;
  exported: null;
}

function demoOptions(args: readonly string[]): { contacts: number; faults: boolean; integration: string; export: boolean } {
  const { values } = parseArgs({
    args: [...args],
    options: {
      contacts: { type: 'string' },
      'no-faults': { type: 'boolean' },
      integration: { type: 'string' },
      'no-export': { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  const contacts = Number(values.contacts ?? 50);
  if (!Number.isInteger(contacts) || contacts < 0) throw new Error(`--contacts '${values.contacts}' is not a non-negative integer`);
  return { contacts, faults: !values['no-faults'], integration: values.integration ?? 'demo', export: !values['no-export'] };
}

/** Before the worker starts: the `contacts` table its job reads, seeded when empty. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function setupDemoTables(context: { db: Kysely<any>; args: readonly string[] }): Promise<void> {
  await ensureContactsTable(context.db);
  await seedContacts(context.db, demoOptions(context.args).contacts);
}

/** Runs the demo on a started tidesync; resolves with its summary. */
export async function runDemo(context: DevContext): Promise<DevResult & { summary: DemoSummary | SeedOnlySummary }> {
  const options = demoOptions(context.args);
  const { tidesync, log: say } = context;
  const demo = await setupDemo({
    db: tidesync.db,
    client: tidesync.client,
    contacts: options.contacts,
    dataFile: path.join(tidesyncHome(), 'demo-crm.json'),
    integrationName: options.integration,
  });
  try {
    say(`demo CRM listening on ${demo.remote.url}${demo.seeded ? `; seeded ${demo.seeded} contacts` : ''}`);
    if (!options.export) {
      const contacts = (await localContactIds(tidesync.db)).length;
      say(
        `--no-export: ${contacts} contacts wait; export them in another terminal with ` +
          `\`npx tidesync --config .build/examples/demo/tidesync.config.js export --all ${demo.integration.name} contact\``,
      );
      return { ok: true, summary: { contacts, seeded: demo.seeded, exported: null }, close: () => demo.remote.stop() };
    }
    demo.remote.resetStats();
    let faultsInjected = 0;
    if (options.faults) {
      // Only writes fail: reads (the check below) must see the real data.
      demo.remote.injectFault({ kind: '5xx', status: 503, count: 3, method: 'POST' });
      demo.remote.injectFault({ kind: '429', retryAfterSeconds: 1, count: 1, method: 'POST' });
      faultsInjected = 4;
      say('the demo CRM will fail 4 requests (3 x 503, 1 x 429 Retry-After: 1); watch them retry in the UI');
    }

    const exportStarted = Date.now();
    const ids = await localContactIds(tidesync.db);
    const scheduled = await tidesync.client.scheduleExports({ integration: demo.integration.name, connector: 'contact', ids });
    const bar = new SingleBar({
      format: 'exporting contacts [{bar}] {value}/{total}  written {written}  skipped {skipped}  failed {failed}',
      stream: process.stderr,
      hideCursor: true,
      noTTYOutput: false,
    });
    const totals = { written: 0, skipped: 0, failed: 0 };
    bar.start(scheduled.length, 0, totals);
    const outcomes = await Promise.all(
      scheduled.map(async (s) => {
        const outcome = await tidesync.client.waitForExport(s);
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
    );
    bar.stop();
    const exportMs = Date.now() - exportStarted;
    for (const o of outcomes) if (!o.ok) say(`  ${o.workflowId} failed: ${o.error}`);

    // Faults not used up (nothing needed a create) must not hit the read-back.
    demo.remote.clearFaults();
    const faultsServed = demo.remote.stats().faultsServed;
    const comparison = await compareRemoteWithLocal(demo, tidesync.db, tidesync.client);
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
      exportMs,
    };
    say(
      `exported ${summary.exported}, skipped ${summary.skipped} (unchanged), failed ${summary.failed} of ${summary.contacts} contacts in ${exportMs} ms; ` +
        `remote ${summary.remoteMatchesLocal ? 'matches' : 'DOES NOT match'} local`,
    );
    if (context.uiUrl) {
      say(
        `inspect the runs: ${context.uiUrl}/namespaces/${tidesync.servers.temporal.namespace}/workflows?query=${encodeURIComponent(`TidesyncIntegration="${demo.integration.name}"`)}`,
      );
    }
    say(
      'export more with `npx tidesync export demo contact <id>`, or capture changes with ' +
        '`npx tidesync capture install --integration demo --connector contact`, in another terminal ' +
        '(both with --config .build/examples/demo/tidesync.config.js).',
    );
    // The CRM keeps serving until tidesync dev stops (it calls close).
    return { ok: summary.failed === 0 && summary.remoteMatchesLocal, summary, close: () => demo.remote.stop() };
  } catch (err) {
    await demo.remote.stop();
    throw err;
  }
}
