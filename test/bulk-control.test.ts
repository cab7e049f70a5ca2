import type { Kysely } from 'kysely';
import { compareRemoteWithLocal, type Demo, setupDemo } from '../examples/demo/demo-setup';
import { STATUS_ATTRIBUTE } from '../src/search-attributes';
import type { TidesyncDatabase } from '../src/store/schema';
import { bulkHistoryBound } from '../src/workflows/options';
import { createTestDatabase, startTestEngine, type TestEngine, uniqueName, waitFor } from './helpers';

const CONTACTS = 400;

describe('bulk export: progress, pause, resume, cancel, continue-as-new, schedules', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: Kysely<TidesyncDatabase>;
  let demo: Demo;
  let engine: TestEngine;

  beforeAll(async () => {
    database = await createTestDatabase();
    db = database.db;
    engine = await startTestEngine(database);
    demo = await setupDemo({ db: database.app, client: engine.client, contacts: CONTACTS, integrationName: uniqueName('control') });
  });
  afterAll(async () => {
    await engine?.close();
    await demo?.remote.stop();
    await database?.drop();
  });
  beforeEach(() => demo.remote.clearFaults());

  const integration = () => demo.integration.name;
  /** Every batch takes 200 ms: a run lasts long enough to steer. */
  const slowBatches = () =>
    demo.remote.injectFault({ kind: 'slow', delayMs: 200, apply: true, count: 1_000_000, method: 'POST', path: '/contacts/batch' });
  const start = (options: object = {}) =>
    engine.client.startBulkExport({ integration: integration(), connector: 'contact', pageSize: 10, parallelism: 2, ...options });

  it('should report progress, pause after the pages in flight holding no worker slot, and resume to the end', async () => {
    slowBatches();
    const { workflowId } = await start();
    const handle = engine.temporal.workflow.getHandle(workflowId);
    const running = await waitFor('a few pages', async () => {
      const p = await engine.client.bulkProgress(workflowId);
      return p.pages >= 3 && p;
    });
    expect(running).toMatchObject({ status: 'running', mode: 'changed', total: CONTACTS, rate: expect.any(Number) });
    expect(running.etaSeconds).toBeGreaterThan(0);

    const paused = await engine.client.pauseBulkExport(workflowId);
    expect(paused.done).toBeLessThan(CONTACTS);
    const settled = await waitFor('the pause to settle', async () => {
      const p = await engine.client.bulkProgress(workflowId);
      return p.status === 'paused' && p;
    });
    // Paused: no page starts, no activity is pending (no worker slot held), the UI shows it.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await engine.client.bulkProgress(workflowId)).toMatchObject({ status: 'paused', pages: settled.pages, done: settled.done });
    const description = await handle.describe();
    expect(description.raw.pendingActivities ?? []).toEqual([]);
    expect(description.typedSearchAttributes.get(STATUS_ATTRIBUTE)).toBe('paused');

    expect(await engine.client.resumeBulkExport(workflowId)).toMatchObject({ status: 'running' });
    demo.remote.clearFaults();
    const result = await engine.client.waitForBulkExport(workflowId);
    expect(result).toMatchObject({ status: 'completed', done: CONTACTS, counters: { written: CONTACTS } });
    // The 1.5 s paused do not count as running time, nor against the finished export's rate.
    expect(result.activeMs).toBeLessThan(result.durationMs - 1_000);
    const finished = await engine.client.bulkProgress(workflowId);
    expect(finished).toMatchObject({ status: 'completed', done: CONTACTS, etaSeconds: 0 });
    expect(finished.rate).toBeGreaterThan(CONTACTS / (result.durationMs / 1000));
    expect((await compareRemoteWithLocal(demo, database.app, engine.client)).matches).toBe(true);
    const listed = await engine.client.listBulkExports({ integration: integration() });
    expect(listed).toContainEqual(expect.objectContaining({ workflowId, status: 'completed', execution: 'COMPLETED' }));
  });

  it('should stop a cancelled export after the pages in flight and record what it did', async () => {
    slowBatches();
    const { workflowId } = await start({ mode: 'all' });
    await waitFor('a few pages', async () => (await engine.client.bulkProgress(workflowId)).pages >= 2);
    const cancelling = await engine.client.cancelBulkExport(workflowId, 'stopped by the test');
    expect(cancelling.status).toBe('cancelling');
    const result = await engine.client.waitForBulkExport(workflowId);
    expect(result.status).toBe('cancelled');
    expect(result.counters.written).toBeGreaterThan(0);
    expect(result.counters.written).toBeLessThan(CONTACTS);
    expect(result.done).toBe(result.counters.read);
    const record = await db.selectFrom('job_execution').selectAll().where('workflow_id', '=', workflowId).executeTakeFirstOrThrow();
    expect(record).toMatchObject({
      status: 'cancelled',
      written_count: result.counters.written,
      read_count: result.done,
      warnings: ['stopped by the test'],
    });
    expect(record.finished_at).toBeInstanceOf(Date);
  });

  it('should continue as new every few pages, each run under the stated history bound, with nothing skipped', async () => {
    const pagesPerRun = 4;
    const { workflowId } = await start({ mode: 'all', pageSize: 25, parallelism: 3, pagesPerRun });
    const result = await engine.client.waitForBulkExport(workflowId);
    const pages = CONTACTS / 25;
    expect(result).toMatchObject({
      status: 'completed',
      done: CONTACTS,
      pages,
      runs: Math.ceil(pages / pagesPerRun),
      counters: { written: CONTACTS },
    });
    const runs = [];
    for await (const run of engine.temporal.workflow.list({ query: `WorkflowId = '${workflowId}'` })) runs.push(run);
    expect(runs).toHaveLength(result.runs);
    const counts: number[] = [];
    for (const run of runs) {
      const history = await engine.temporal.workflow.getHandle(workflowId, run.runId).fetchHistory();
      const events = history.events?.length ?? 0;
      counts.push(events);
      expect({ run: run.runId, events, bound: events <= bulkHistoryBound(pagesPerRun) }).toEqual({ run: run.runId, events, bound: true });
    }
    console.log(
      `continue-as-new: ${runs.length} runs of ${pagesPerRun} pages, history events per run ${counts.join(', ')} (bound ${bulkHistoryBound(pagesPerRun)})`,
    );
    // One execution record for the whole export, however many runs.
    expect(
      await db.selectFrom('job_execution').select(['status', 'written_count']).where('workflow_id', '=', workflowId).execute(),
    ).toEqual([{ status: 'completed', written_count: CONTACTS }]);
  });

  it('should run a reconciliation schedule in mode changed, and list and remove it', async () => {
    const schedule = await engine.client.setBulkSchedule({ integration: integration(), connector: 'contact', every: '2s' });
    expect(schedule).toMatchObject({ scheduleId: `bulk/${integration()}/contact`, when: 'every 2s', mode: 'changed', paused: false });
    expect(await engine.client.listBulkSchedules()).toContainEqual(expect.objectContaining({ scheduleId: schedule.scheduleId }));
    try {
      const run = await waitFor(
        'a scheduled run to complete',
        async () => {
          const list = await engine.client.listBulkExports({ integration: integration() });
          return list.find((b) => b.workflowId.startsWith(`bulk/${integration()}/contact/scheduled-`) && b.execution === 'COMPLETED');
        },
        30_000,
      );
      expect(await engine.client.waitForBulkExport(run.workflowId)).toMatchObject({
        status: 'completed',
        mode: 'changed',
        done: CONTACTS,
        counters: { written: 0 },
      });
    } finally {
      expect(await engine.client.removeBulkSchedule(integration(), 'contact')).toBe(true);
    }
    expect(await engine.client.removeBulkSchedule(integration(), 'contact')).toBe(false);
    await expect(engine.client.setBulkSchedule({ integration: integration(), connector: 'contact' })).rejects.toThrow(
      'exactly one of every',
    );
  });

  it('should skip a scheduled or triggered reconciliation while one still runs, not start a second', async () => {
    slowBatches();
    // Every 2 s, in mode all (so a run has writes to do): far more often than a run takes.
    await engine.client.setBulkSchedule({ integration: integration(), connector: 'contact', every: '2s', mode: 'all', pageSize: 10 });
    const scheduled = `bulk/${integration()}/contact/scheduled-`;
    const runningRuns = async () =>
      (await engine.client.listBulkExports({ integration: integration(), running: true })).filter((b) =>
        b.workflowId.startsWith(scheduled),
      );
    let first: string | undefined;
    try {
      await engine.client.triggerBulkSchedule(integration(), 'contact');
      // Whichever started first (the trigger or the interval) is held running by a pause.
      first = await waitFor('a scheduled run', async () => (await runningRuns())[0]?.workflowId);
      await engine.client.pauseBulkExport(first);
      // Runs are named by the second they start in: trigger in another second than the first run's.
      await new Promise((resolve) => setTimeout(resolve, 1100));
      await engine.client.triggerBulkSchedule(integration(), 'contact');
      // The trigger and two intervals pass: each finds a run going, and skips.
      await new Promise((resolve) => setTimeout(resolve, 4500));
      expect((await runningRuns()).map((b) => b.workflowId)).toEqual([first]);
    } finally {
      await engine.client.removeBulkSchedule(integration(), 'contact');
      demo.remote.clearFaults();
      for (const run of await runningRuns()) {
        await engine.client.resumeBulkExport(run.workflowId).catch(() => undefined);
        await engine.client.waitForBulkExport(run.workflowId);
      }
    }
    expect(await engine.client.waitForBulkExport(first)).toMatchObject({ status: 'completed', mode: 'all', done: CONTACTS });
  });
});
