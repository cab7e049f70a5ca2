import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { compareRemoteWithLocal, type Demo, setupDemo } from '../examples/demo/demo-setup';
import { seedContact } from '../examples/demo/local-contacts';
import { createTestDatabase, startTestEngine, type TestEngine, uniqueName, waitFor } from './helpers';
import { LOST_ANSWER_SLOW_MS, lostCreates } from './support/lost-create';

/**
 * A writer that creates by the entity's key (`Writer.upsertsByKey`; the demo writer with
 * `transport.upsertByKey`) records no pending create: a create whose answer was lost is sent
 * again and finds the record it made, and a local delete without a remote id deletes by key.
 * These are the cases the pending create is otherwise there for (see unconfirmed-create.test.ts
 * and bulk-lost-answer.test.ts, the same cases without the capability).
 */
const CONTACTS = 40;
const RETRY_WINDOW_MS = 3000;
/** The writer gives up on a request after this long; the CRM applies the slow one later. */
const REQUEST_TIMEOUT_MS = 400;
const SLOW_MS = LOST_ANSWER_SLOW_MS;

describe('a writer that creates by key', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let demo: Demo;
  let engine: TestEngine;

  beforeAll(async () => {
    database = await createTestDatabase();
    engine = await startTestEngine(database);
    demo = await setupDemo({
      db: database.app,
      client: engine.client,
      contacts: CONTACTS,
      integrationName: uniqueName('bykey'),
      upsertByKey: true,
    });
    await engine.client.upsertIntegration({
      type: 'demo',
      name: demo.integration.name,
      transport: { baseUrl: demo.remote.url, timeoutMs: REQUEST_TIMEOUT_MS, upsertByKey: true },
      secretRef: demo.integration.secretRef,
      retryWindowMs: RETRY_WINDOW_MS,
      probeIntervalMs: 500,
      breakerThreshold: 1000, // the breaker is not what this is about
    });
    // Every pending create ever written to a sync state, kept by a trigger: there must be none.
    const schema = sql.id(database.databases.schema);
    await sql`create table public.pending_seen (entity_id text not null)`.execute(database.app);
    await sql`create function public.note_pending() returns trigger language plpgsql as $$
      begin insert into public.pending_seen values (new.entity_id); return new; end $$`.execute(database.app);
    await sql`create trigger note_pending after insert or update on ${schema}.sync_state
      for each row when (new.pending_create is not null) execute function public.note_pending()`.execute(database.app);
  });
  afterEach(async () => {
    demo.remote.clearFaults();
    const { rows } = await sql<{ entity_id: string }>`select entity_id from public.pending_seen`.execute(database.app);
    expect(rows).toEqual([]);
  });
  afterAll(async () => {
    await engine?.close();
    await demo?.remote.stop();
    await database?.drop();
  });

  const integration = () => demo.integration.name;
  const kit = () => lostCreates(database, demo, engine);
  const remoteOf = (id: number) => kit().remoteOf(id);
  const state = (id: number) => kit().state(id);
  const exportOnce = (id: number) => kit().exportOnce(id);
  /** The lost create, as without the capability; but no pending create was kept to find it by. */
  async function createWithLostAnswer(id: number): Promise<void> {
    await kit().createWithLostAnswer(id);
    expect(await state(id)).toMatchObject({ pending_create: null });
  }

  it('should update the record a lost create made when the entity changes, not create a second one', async () => {
    await createWithLostAnswer(1);
    await sql`update contacts set phone = '+1-555-0101' where id = 1`.execute(database.app);
    expect(await exportOnce(1)).toMatchObject({ ok: true, status: 'completed', counters: { failed: 0 } });
    expect(remoteOf(1)).toEqual([expect.objectContaining({ phone: '+1-555-0101', externalKey: '1' })]);
    expect(await state(1)).toMatchObject({ status: 'active', remote_id: remoteOf(1)[0]?.id, last_error: null });
    expect(await engine.client.listFailures({ integration: integration() })).toEqual([]);
  });

  it('should delete the record a lost create made when the entity is deleted, by its key', async () => {
    await createWithLostAnswer(2);
    await sql`delete from contacts where id = 2`.execute(database.app);
    expect(await exportOnce(2)).toMatchObject({ ok: true, counters: { failed: 0, written: 1 } });
    expect(remoteOf(2)).toEqual([]);
    expect(await state(2)).toMatchObject({ status: 'deleted', remote_id: null });
    // Known gone now: a second export sends no second delete.
    const deletes = demo.remote.stats().byMethod['DELETE'] ?? 0;
    expect(await exportOnce(2)).toMatchObject({ ok: true, counters: { written: 0, skipped: 1 } });
    expect(demo.remote.stats().byMethod['DELETE'] ?? 0).toBe(deletes);
    expect(await engine.client.listFailures({ integration: integration() })).toEqual([]);
  });

  it('should make one remote record per contact when a bulk export loses the answer to a batch', async () => {
    // The first batch is applied late, after the writer gave up on it: its creates are on the CRM,
    // but tidesync never got their ids. While the CRM holds it, one contact changes (no outbox row:
    // only the page's retry carries the change).
    const changedId = 7;
    demo.remote.injectFault({ kind: 'slow', delayMs: SLOW_MS, apply: true, count: 1, method: 'POST', path: '/contacts/batch' });
    const started = await engine.client.startBulkExport({ integration: integration(), connector: 'contact', pageSize: CONTACTS });
    await waitFor('the first batch to reach the CRM', async () => (demo.remote.stats().byMethod['POST'] ?? 0) >= 1, 10_000);
    const heldSince = Date.now();
    await database.app.updateTable('contacts').set({ phone: '+1-555-0007-changed' }).where('id', '=', changedId).execute();
    const result = await engine.client.waitForBulkExport(started.workflowId);
    // The export may end before the CRM applies the held batch: look once it has.
    await sleep(Math.max(0, heldSince + SLOW_MS + 300 - Date.now()));

    const local = CONTACTS - 1; // contact 2 was deleted above
    expect(result).toMatchObject({ status: 'completed', counters: { failed: 0 } });
    const remote = demo.remote.contacts();
    expect(remote).toHaveLength(local);
    expect(new Set(remote.map((c) => c.externalKey)).size).toBe(local);
    expect(remote.find((c) => c.externalKey === String(changedId))?.phone).toBe('+1-555-0007-changed');
    expect(remote.find((c) => c.externalKey === String(changedId))?.email).toBe(seedContact(changedId - 1).email);
    const comparison = await compareRemoteWithLocal(demo, database.app, engine.client);
    expect(comparison.mismatches).toEqual([]);
  });
});
