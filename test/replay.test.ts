import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { historyFromJSON, historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { sql } from 'kysely';
import { setupDemo } from '../examples/demo/demo-setup';
import { createTestDatabase, startTestEngine } from './helpers';

/**
 * Replay tests: histories recorded from real runs of released workflow code must replay without
 * non-determinism errors against today's code. Change the workflow without a `patched()` branch
 * and these fail. Record the fixtures of new scenarios (after a deliberate, patched change) with
 * `TIDESYNC_RECORD_HISTORIES=1 npx jest test/replay.test.ts`; existing fixtures are kept as released.
 */
const FIXTURES = path.join(__dirname, 'fixtures', 'histories');

describe('workflow replay', () => {
  if (process.env['TIDESYNC_RECORD_HISTORIES']) {
    it('should record fixture histories from real runs', async () => {
      const database = await createTestDatabase();
      const engine = await startTestEngine(database);
      const demo = await setupDemo({ db: database.app, client: engine.client, contacts: 5, integrationName: 'replay' });
      try {
        const record = async (name: string, id: number, between?: () => Promise<void>) => {
          const scheduled = await engine.client.scheduleExport({ integration: 'replay', connector: 'contact', id });
          if (!scheduled.scheduled) throw new Error(scheduled.reason);
          await between?.();
          await engine.client.waitForExport(scheduled);
          const history = await engine.temporal.workflow.getHandle(scheduled.workflowId, scheduled.runId).fetchHistory();
          await writeFile(path.join(FIXTURES, `${name}.json`), historyToJSON(history));
        };
        // A bulk export's first run (a continue-as-new ends it when `pagesPerRun` pages were started).
        const recordBulk = async (name: string, pagesPerRun: number) => {
          const started = await engine.client.startBulkExport({
            integration: 'replay',
            connector: 'contact',
            mode: 'all',
            pageSize: 2,
            parallelism: 2,
            pagesPerRun,
            id: name,
          });
          await engine.client.waitForBulkExport(started.workflowId);
          const history = await engine.temporal.workflow.getHandle(started.workflowId, started.runId).fetchHistory();
          await writeFile(path.join(FIXTURES, `${name}.json`), historyToJSON(history));
        };
        const settings = { type: 'demo', name: 'replay', transport: { baseUrl: demo.remote.url }, secretRef: demo.integration.secretRef };
        // Released histories are never recorded again: only scenarios without a fixture run.
        const scenarios: Array<[string, () => Promise<void>]> = [
          ['create', () => record('create', 1)],
          [
            'retried-create',
            async () => {
              demo.remote.injectFault({ kind: '429', retryAfterSeconds: 1, count: 1, method: 'POST' });
              await record('retried-create', 2);
            },
          ],
          [
            'coalesced-update',
            async () => {
              // The write of pass 1 is slow; a change committed meanwhile makes the run do a second pass.
              await sql`update contacts set phone = 'first change' where id = 1`.execute(database.app);
              demo.remote.injectFault({ kind: 'slow', delayMs: 1500, apply: true, count: 1, method: 'PATCH' });
              await record('coalesced-update', 1, async () => {
                await new Promise((resolve) => setTimeout(resolve, 700));
                await sql`update contacts set phone = 'changed during the run' where id = 1`.execute(database.app);
                await engine.client.scheduleExport({ integration: 'replay', connector: 'contact', id: 1 });
              });
            },
          ],
          ['missing-entity', () => record('missing-entity', 999)],
          // Recorded with the failure lifecycle (patched 'failure-lifecycle').
          ['lifecycle-create', () => record('lifecycle-create', 3)],
          [
            'lifecycle-degraded-probe',
            async () => {
              // The first failure trips the breaker; the run waits, probes once per second, and writes when it recovers.
              await engine.client.upsertIntegration({ ...settings, retryWindowMs: 60_000, probeIntervalMs: 1000, breakerThreshold: 1 });
              demo.remote.injectFault({ kind: '5xx', status: 503, count: 3, method: 'POST' });
              await record('lifecycle-degraded-probe', 4);
            },
          ],
          [
            'lifecycle-window-exhausted',
            async () => {
              await engine.client.upsertIntegration({ ...settings, retryWindowMs: 6000, probeIntervalMs: 1000, breakerThreshold: 1000 });
              demo.remote.injectFault({ kind: '5xx', status: 503, count: 1_000_000, method: 'POST' });
              await record('lifecycle-window-exhausted', 5);
            },
          ],
          // Recorded with passes as local activities (patched 'local-pass').
          ['local-pass-create', () => record('local-pass-create', 1)],
          [
            'local-pass-coalesced-update',
            async () => {
              await sql`update contacts set phone = 'first change' where id = 1`.execute(database.app);
              demo.remote.injectFault({ kind: 'slow', delayMs: 1500, apply: true, count: 1, method: 'PATCH' });
              await record('local-pass-coalesced-update', 1, async () => {
                await new Promise((resolve) => setTimeout(resolve, 700));
                await sql`update contacts set phone = 'changed during the run' where id = 1`.execute(database.app);
                await engine.client.scheduleExport({ integration: 'replay', connector: 'contact', id: 1 });
              });
            },
          ],
          [
            'local-pass-window-exhausted',
            async () => {
              await engine.client.upsertIntegration({ ...settings, retryWindowMs: 4000, probeIntervalMs: 1000, breakerThreshold: 1000 });
              demo.remote.injectFault({ kind: '5xx', status: 503, count: 1_000_000, method: 'POST' });
              await record('local-pass-window-exhausted', 2);
              await engine.client.upsertIntegration({ ...settings, retryWindowMs: 60_000, probeIntervalMs: 1000, breakerThreshold: 1000 });
            },
          ],
          [
            // A change stream: two batches, the second while the first is written, one entity in both.
            'stream-passes',
            async () => {
              await sql`update contacts set phone = 'streamed' where id in (3, 4, 5)`.execute(database.app);
              demo.remote.injectFault({ kind: 'slow', delayMs: 800, apply: true, count: 1, method: 'PATCH' });
              const [first] = await engine.client.streamExports({ integration: 'replay', connector: 'contact', ids: [3, 4] });
              if (!first?.scheduled) throw new Error('stream refused');
              await new Promise((resolve) => setTimeout(resolve, 300));
              await sql`update contacts set phone = 'streamed again' where id = 4`.execute(database.app);
              await engine.client.streamExports({ integration: 'replay', connector: 'contact', ids: [4, 5, 12345] });
              const handle = engine.temporal.workflow.getHandle(first.workflowId, first.runId);
              await handle.result();
              await writeFile(path.join(FIXTURES, 'stream-passes.json'), historyToJSON(await handle.fetchHistory()));
            },
          ],
          // Recorded with bulkBegin as an activity (before patch 'bulk-local-begin').
          ['bulk-export', () => recordBulk('bulk-export', 500)],
          ['bulk-export-continued', () => recordBulk('bulk-export-continued', 2)],
          // Recorded with bulkBegin as a local activity (patched 'bulk-local-begin').
          ['bulk-local-begin', () => recordBulk('bulk-local-begin', 500)],
        ];
        for (const [name, run] of scenarios) {
          if (existsSync(path.join(FIXTURES, `${name}.json`))) continue;
          await run();
          demo.remote.clearFaults();
        }
      } finally {
        await engine.close();
        await demo.remote.stop();
        await database.drop();
      }
    });
    return;
  }

  it('should replay every recorded history with the current workflow code', async () => {
    const files = (await readdir(FIXTURES)).filter((f) => f.endsWith('.json')).sort();
    expect(files.length).toBeGreaterThanOrEqual(14);
    const bundlePath = process.env['TIDESYNC_WORKFLOW_BUNDLE'];
    const workflows = bundlePath ? { workflowBundle: { codePath: bundlePath } } : { workflowsPath: require.resolve('../src/workflows') };
    for (const file of files) {
      const history = historyFromJSON(JSON.parse(await readFile(path.join(FIXTURES, file), 'utf8')));
      await expect(Worker.runReplayHistory(workflows, history, file)).resolves.toBeUndefined();
    }
  });
});
