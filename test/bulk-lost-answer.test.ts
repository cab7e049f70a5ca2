import { setTimeout as sleep } from 'node:timers/promises';
import type { Kysely } from 'kysely';
import { compareRemoteWithLocal, type Demo, setupDemo } from '../examples/demo/demo-setup';
import { seedContact } from '../examples/demo/local-contacts';
import type { TidesyncDatabase } from '../src/store/schema';
import { createTestDatabase, startTestEngine, type TestEngine, uniqueName, waitFor } from './helpers';

const CONTACTS = 60;
/** Changed locally while the CRM holds the batch that creates it. */
const CHANGED_ID = 7;
/** How long the CRM holds the first batch before it applies it (the writer gives up after 1 s). */
const SLOW_MS = 2500;
/** Refused by the CRM (422 on its batch item), every time. */
const REJECTED_ID = 30;

describe('bulk export: a batch of creates whose answer was lost', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: Kysely<TidesyncDatabase>;
  let demo: Demo;
  let engine: TestEngine;

  beforeAll(async () => {
    database = await createTestDatabase();
    db = database.db;
    engine = await startTestEngine(database);
    demo = await setupDemo({ db: database.app, client: engine.client, contacts: CONTACTS, integrationName: uniqueName('lostbatch') });
    // The writer gives up after 1 s; the breaker stays out of the way.
    await engine.client.upsertIntegration({
      type: 'demo',
      name: demo.integration.name,
      transport: { baseUrl: demo.remote.url, timeoutMs: 1000 },
      secretRef: demo.integration.secretRef,
      retryWindowMs: 120_000,
      probeIntervalMs: 1000,
      breakerThreshold: 1000,
    });
  });
  afterAll(async () => {
    await engine?.close();
    await demo?.remote.stop();
    await database?.drop();
  });

  it('should make one remote record per contact when a contact changes before the batch is sent again', async () => {
    const rejectedEmail = seedContact(REJECTED_ID - 1).email as string;
    // The first batch is applied 2.5 s late, after the writer gave up on it: its creates are on the
    // CRM, but tidesync never got their ids.
    demo.remote.injectFault({ kind: 'slow', delayMs: SLOW_MS, apply: true, count: 1, method: 'POST', path: '/contacts/batch' });
    demo.remote.injectFault({ kind: 'item-422', match: rejectedEmail, count: 1_000_000, message: `email "${rejectedEmail}" is refused` });

    const started = await engine.client.startBulkExport({ integration: demo.integration.name, connector: 'contact', pageSize: CONTACTS });
    // While the CRM holds that batch, the application changes one of its contacts (no outbox row:
    // only the bulk export's retry of the page can carry the change).
    await waitFor('the first batch to reach the CRM', async () => demo.remote.stats().byMethod['POST'] === 1, 10_000);
    const heldSince = Date.now();
    await database.app.updateTable('contacts').set({ phone: '+1-555-0007-changed' }).where('id', '=', CHANGED_ID).execute();
    const result = await engine.client.waitForBulkExport(started.workflowId);
    // The export may end before the CRM applies the held batch: look once it has.
    await sleep(Math.max(0, heldSince + SLOW_MS + 500 - Date.now()));
    demo.remote.clearFaults();

    expect(result).toMatchObject({
      status: 'completed_with_failures',
      done: CONTACTS,
      counters: { read: CONTACTS, written: CONTACTS - 1, failed: 1 },
      failures: [{ key: String(REJECTED_ID), code: 'remote_permanent' }],
    });
    // One remote record per contact: the retried page settled the lost creates instead of making
    // them again (the changed one with its old key, then an update to the new phone).
    const remote = demo.remote.contacts();
    expect(remote).toHaveLength(CONTACTS - 1);
    expect(new Set(remote.map((c) => c.email)).size).toBe(CONTACTS - 1);
    const comparison = await compareRemoteWithLocal(demo, database.app, engine.client);
    expect(comparison.mismatches).toEqual([{ id: REJECTED_ID, problem: 'never exported (no remote id)' }]);
    expect(remote.find((c) => c.email === seedContact(CHANGED_ID - 1).email)?.phone).toBe('+1-555-0007-changed');
    // Nothing is left pending: answered creates were saved, the refused one was never applied.
    expect(await db.selectFrom('sync_state').select('entity_id').where('pending_create', 'is not', null).execute()).toEqual([]);

    // A later change goes to the contact's one record, and the refused contact, taken now, gets its first.
    await database.app.updateTable('contacts').set({ company: 'Later Ltd' }).where('id', '=', CHANGED_ID).execute();
    const again = await engine.client.startBulkExport({ integration: demo.integration.name, connector: 'contact' });
    expect(await engine.client.waitForBulkExport(again.workflowId)).toMatchObject({ counters: { written: 2, failed: 0 } });
    expect(demo.remote.contacts()).toHaveLength(CONTACTS);
    expect((await compareRemoteWithLocal(demo, database.app, engine.client)).matches).toBe(true);
  });
});
