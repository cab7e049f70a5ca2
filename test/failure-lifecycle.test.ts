import { type Kysely, sql } from 'kysely';
import { compareRemoteWithLocal, type Demo, setupDemo } from '../examples/demo/demo-setup';
import type { ExportOutcome } from '../src/client';
import { enqueueExport } from '../src/outbox/enqueue';
import { OutboxRelay } from '../src/outbox/relay';
import type { TidesyncDatabase } from '../src/store/schema';
import { STATUS_ATTRIBUTE } from '../src/search-attributes';
import { createTestDatabase, startTestEngine, type TestEngine, uniqueName, waitFor } from './helpers';

/** A short window for the test; the breaker is kept out of the way (its own test is breaker.test.ts). */
const RETRY_WINDOW_MS = 5000;
const PROBE_INTERVAL_MS = 1000;

describe('failure lifecycle: retry window, failed records, retry', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: Kysely<TidesyncDatabase>;
  let demo: Demo;
  let engine: TestEngine;

  beforeAll(async () => {
    database = await createTestDatabase();
    db = database.db;
    engine = await startTestEngine(database);
    demo = await setupDemo({ db: database.app, client: engine.client, contacts: 8, integrationName: uniqueName('demo') });
    await engine.client.upsertIntegration({
      type: 'demo',
      name: demo.integration.name,
      transport: { baseUrl: demo.remote.url },
      secretRef: demo.integration.secretRef,
      retryWindowMs: RETRY_WINDOW_MS,
      probeIntervalMs: PROBE_INTERVAL_MS,
      breakerThreshold: 1000,
    });
  });
  afterAll(async () => {
    await engine?.close();
    await demo?.remote.stop();
    await database?.drop();
  });
  beforeEach(() => demo.remote.clearFaults());

  const integration = () => demo.integration.name;

  async function exportAll(ids: number[]): Promise<ExportOutcome[]> {
    const scheduled = await engine.client.scheduleExports({ integration: integration(), connector: 'contact', ids });
    return Promise.all(scheduled.map((s) => engine.client.waitForExport(s)));
  }

  async function state(id: number) {
    return db
      .selectFrom('sync_state')
      .selectAll()
      .where('integration_id', '=', demo.integration.id)
      .where('entity_id', '=', String(id))
      .executeTakeFirstOrThrow();
  }

  /** Every sync state marked synced (`active`) holds what the remote record holds: nothing is marked synced that was not written. */
  async function expectSyncedMeansWritten(): Promise<void> {
    const states = await db.selectFrom('sync_state').selectAll().where('integration_id', '=', demo.integration.id).execute();
    const active = states.filter((s) => s.status === 'active');
    expect(active.length).toBeGreaterThan(0);
    for (const s of active) {
      const remote = demo.remote.contacts().find((c) => c.id === s.remote_id);
      expect({ key: s.entity_id, remote: remote && { ...remote, id: undefined, version: undefined } }).toEqual({
        key: s.entity_id,
        remote: { ...s.snapshot, id: undefined, version: undefined },
      });
    }
  }

  it('should retry an outage for the retry window, keep every undelivered record as failed, and deliver them with retryFailed', async () => {
    expect(await exportAll([1, 2, 3])).toEqual(Array(3).fill(expect.objectContaining({ ok: true, status: 'completed' })));
    const before = await state(1);
    await sql`update contacts set phone = 'changed during the outage' where id in (1, 2)`.execute(database.app);

    // Connection resets, a 429, then 503 for every request: longer than the 5 s window.
    demo.remote.injectFault({ kind: 'reset', count: 2 });
    demo.remote.injectFault({ kind: '429', retryAfterSeconds: 1, count: 1 });
    demo.remote.injectFault({ kind: '5xx', status: 503, count: 1_000_000 });
    const started = Date.now();
    const outcomes = await exportAll([1, 2, 4, 5]); // two updates, two creates
    expect(Date.now() - started).toBeGreaterThanOrEqual(RETRY_WINDOW_MS);

    // The runs complete (they do not fail) with each record as a recorded failure.
    for (const outcome of outcomes) {
      expect(outcome).toMatchObject({ ok: true, status: 'completed_with_failures', counters: { written: 0, failed: 1 } });
      expect(outcome.ok && outcome.failures[0]).toMatchObject({
        code: 'retry_window_exhausted',
        message: expect.stringMatching(
          /^gave up after \d+ attempts in the 5s retry window: demo crm failed .* \(503\): injected server error$/,
        ),
      });
    }
    const description = await engine.temporal.workflow.getHandle(outcomes[0]?.workflowId ?? '').describe();
    expect(description.status.name).toBe('COMPLETED');
    expect(description.typedSearchAttributes.get(STATUS_ATTRIBUTE)).toBe('completed_with_failures');

    const failures = await engine.client.listFailures({ integration: integration() });
    expect(failures.map((f) => f.key).sort()).toEqual(['1', '2', '4', '5']);
    for (const f of failures) {
      expect(f.attempts).toBeGreaterThanOrEqual(3);
      expect(f.failedAt).toBeInstanceOf(Date);
      expect(f.lastError).toMatch(/injected server error/);
    }
    // The change is kept, not half-applied: a failed update keeps what was last pushed (the next try updates it).
    expect(await state(1)).toMatchObject({ status: 'failed', remote_id: before.remote_id, snapshot: before.snapshot });
    expect((await state(4)).remote_id).toBeNull();
    expect(demo.remote.contacts().filter((c) => c.phone === 'changed during the outage')).toEqual([]);
    await expectSyncedMeansWritten();

    demo.remote.clearFaults();
    const retried = await engine.client.retryFailed({ integration: integration(), connector: 'contact' });
    expect(retried.map((r) => r.key).sort()).toEqual(['1', '2', '4', '5']);
    const delivered = await Promise.all(retried.map((r) => engine.client.waitForExport(r)));
    expect(delivered.map((d) => d.ok && d.written.map((w) => `${w.key}:${w.operation}`)).sort()).toEqual([
      ['1:update'],
      ['2:update'],
      ['4:create'],
      ['5:create'],
    ]);
    expect(await engine.client.listFailures({ integration: integration() })).toEqual([]);
    expect(await state(1)).toMatchObject({ status: 'active', remote_id: before.remote_id, attempts: 0, failed_at: null, last_error: null });
    expect(await compareRemoteWithLocal(demo, database.app, engine.client, [1, 2, 3, 4, 5])).toMatchObject({ matches: true });
    // One remote record per contact: the retried updates did not create a second one.
    expect(demo.remote.contacts()).toHaveLength(5);
    await expectSyncedMeansWritten();
  });

  it("should mark a rejected record failed with the remote's message, and export it on its next local change, clearing failed", async () => {
    await sql`update contacts set email = 'not-an-email' where id = 6`.execute(database.app);
    const [rejected] = await exportAll([6]);
    expect(rejected).toMatchObject({ ok: true, status: 'completed_with_failures', failures: [{ key: '6', code: 'remote_permanent' }] });
    expect(await state(6)).toMatchObject({
      status: 'failed',
      attempts: 1,
      last_error: 'demo crm rejected POST /contacts (422): email "not-an-email" is not a valid address',
    });
    expect(await engine.client.listFailures({ integration: integration(), connector: 'contact', ids: [6] })).toEqual([
      expect.objectContaining({ key: '6', attempts: 1, lastError: expect.stringContaining('is not a valid address') }),
    ]);

    // The application fixes the row and enqueues the change in the same transaction, as usual.
    const relay = new OutboxRelay({ db, databaseUrl: database.url, client: engine.client, maxRetryDelayMs: 500 });
    relay.start();
    try {
      await database.app.transaction().execute(async (trx) => {
        await sql`update contacts set email = 'fixed.6@example.com' where id = 6`.execute(trx);
        await enqueueExport(trx, { integration: integration(), connector: 'contact', id: 6 });
      });
      await waitFor('contact 6 exported after its change', async () => (await state(6)).status === 'active', 30_000);
    } finally {
      await relay.stop();
    }
    expect(await state(6)).toMatchObject({ attempts: 0, failed_at: null, last_error: null, remote_id: expect.any(String) });
    expect(demo.remote.contacts().filter((c) => c.email === 'fixed.6@example.com')).toHaveLength(1);
    expect(await engine.client.listFailures({ integration: integration() })).toEqual([]);
  });

  it('should refuse to retry an entity that is not failed, and ask for the connector when ids are given', async () => {
    expect(await engine.client.retryFailed({ integration: integration(), connector: 'contact', ids: [3] })).toEqual([
      { scheduled: false, key: '3', reason: `${integration()}/contact/3 is not failed: nothing to retry` },
    ]);
    await expect(engine.client.retryFailed({ integration: integration(), ids: [3] })).rejects.toThrow(
      'failed records are picked by id within one integration and connector: give both with the ids',
    );
    await expect(engine.client.listFailures({ integration: 'nope' })).rejects.toThrow(/unknown integration 'nope'/);
  });

  it('should refuse retry settings out of range, naming the value', async () => {
    const settings = { type: 'demo', name: integration(), transport: { baseUrl: demo.remote.url } };
    await expect(engine.client.upsertIntegration({ ...settings, retryWindowMs: 500 })).rejects.toThrow(
      `integration '${integration()}': retry window 500 ms is not valid: use 1s to 30d (whole milliseconds)`,
    );
    await expect(engine.client.upsertIntegration({ ...settings, breakerThreshold: 0 })).rejects.toThrow(
      `integration '${integration()}': breaker threshold 0 is not valid: use a whole number from 1 to 10000`,
    );
  });
});
