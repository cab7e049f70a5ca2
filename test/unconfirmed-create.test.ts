import { sql } from 'kysely';
import { type Demo, setupDemo } from '../examples/demo/demo-setup';
import { createTestDatabase, startTestEngine, type TestEngine, uniqueName } from './helpers';
import { lostCreates } from './support/lost-create';

/**
 * A create the remote applied but whose answer was lost (the writer timed out), followed by
 * failures until the retry window ran out: the record is `failed` without a remote id, yet the
 * remote holds it. Found by `npm run chaos`: its next change created a second record, and a
 * local delete left the first one on the remote for good.
 */
const RETRY_WINDOW_MS = 3000;
/** The writer gives up on a request after this long; the CRM applies the slow one later (`LOST_ANSWER_SLOW_MS`). */
const REQUEST_TIMEOUT_MS = 400;

describe('a create whose answer was lost before the retry window ran out', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let demo: Demo;
  let engine: TestEngine;

  beforeAll(async () => {
    database = await createTestDatabase();
    engine = await startTestEngine(database);
    demo = await setupDemo({ db: database.app, client: engine.client, contacts: 4, integrationName: uniqueName('demo') });
    await engine.client.upsertIntegration({
      type: 'demo',
      name: demo.integration.name,
      transport: { baseUrl: demo.remote.url, timeoutMs: REQUEST_TIMEOUT_MS },
      secretRef: demo.integration.secretRef,
      retryWindowMs: RETRY_WINDOW_MS,
      probeIntervalMs: 500,
      breakerThreshold: 1000, // the breaker is not what this is about
    });
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
  const createWithLostAnswer = (id: number) => kit().createWithLostAnswer(id);

  it('should update the record the lost create made when the entity changes, not create a second one', async () => {
    await createWithLostAnswer(1);
    await sql`update contacts set phone = '+1-555-0101' where id = 1`.execute(database.app);
    const replays = demo.remote.stats().replays;
    expect(await exportOnce(1)).toMatchObject({ ok: true, status: 'completed', counters: { failed: 0 } });
    // The lost create was sent again with its own key, and the CRM answered it from its records.
    expect(demo.remote.stats().replays).toBe(replays + 1);
    expect(remoteOf(1)).toEqual([expect.objectContaining({ phone: '+1-555-0101' })]);
    expect(await state(1)).toMatchObject({ status: 'active', remote_id: remoteOf(1)[0]?.id, last_error: null });
    expect(await engine.client.listFailures({ integration: integration() })).toEqual([]);
  });

  it('should delete the record the lost create made when the entity is deleted, not leave it on the remote', async () => {
    await createWithLostAnswer(2);
    await sql`delete from contacts where id = 2`.execute(database.app);
    expect(await exportOnce(2)).toMatchObject({ ok: true, counters: { failed: 0 } });
    expect(remoteOf(2)).toEqual([]);
    expect(await engine.client.listFailures({ integration: integration() })).toEqual([]);
  });

  it('should deliver the lost create once with retry-failed when nothing changed', async () => {
    await createWithLostAnswer(3);
    const [retried] = await engine.client.retryFailed({ integration: integration(), connector: 'contact', ids: [3] });
    expect(await engine.client.waitForExport(retried ?? { scheduled: false, key: '3', reason: 'not retried' })).toMatchObject({
      ok: true,
      counters: { failed: 0 },
    });
    expect(remoteOf(3)).toHaveLength(1);
    expect(await state(3)).toMatchObject({ status: 'active', remote_id: remoteOf(3)[0]?.id });
  });

  it('should settle the lost create in a bulk export when the entity changed since, not create a second record', async () => {
    await createWithLostAnswer(4);
    expect(await state(4)).toMatchObject({ pending_create: expect.objectContaining({ idempotencyKey: expect.any(String) }) });
    // Changed since: the bulk export plans a create of other data, under another key.
    await sql`update contacts set phone = '+1-555-0404' where id = 4`.execute(database.app);
    const replays = demo.remote.stats().replays;
    const { workflowId } = await engine.client.startBulkExport({ integration: integration(), connector: 'contact' });
    expect(await engine.client.waitForBulkExport(workflowId)).toMatchObject({ status: 'completed', counters: { failed: 0 } });
    // The lost create went out again under its own key and the CRM answered it from its records.
    expect(demo.remote.stats().replays).toBe(replays + 1);
    expect(remoteOf(4)).toEqual([expect.objectContaining({ phone: '+1-555-0404' })]);
    expect(await state(4)).toMatchObject({ status: 'active', remote_id: remoteOf(4)[0]?.id, pending_create: null });
  });
});
