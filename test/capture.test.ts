import { type Kysely, sql } from 'kysely';
import { type Demo, setupDemo } from '../examples/demo/demo-setup';
import type { TidesyncDatabase } from '../src/store/schema';
import { installCapture, removeCapture } from '../src/outbox/capture';
import { withTidesyncOrigin } from '../src/store/origin';
import { OutboxRelay } from '../src/outbox/relay';
import { createTestDatabase, startTestEngine, type TestEngine, uniqueName, waitFor } from './helpers';

describe('change capture triggers', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: Kysely<TidesyncDatabase>;
  let demo: Demo;
  let engine: TestEngine;
  const integration = uniqueName('demo');

  beforeAll(async () => {
    database = await createTestDatabase();
    db = database.db;
    engine = await startTestEngine(database);
    demo = await setupDemo({ db: database.app, client: engine.client, contacts: 5, integrationName: integration });
  });
  afterAll(async () => {
    await engine?.close();
    await demo?.remote.stop();
    await database?.drop();
  });
  beforeEach(async () => {
    await db.deleteFrom('outbox').execute();
  });

  const outbox = () => db.selectFrom('outbox').select(['entity_id', 'connector']).orderBy('id').execute();

  it('should capture inserts, updates of watched fields only, and deletes', async () => {
    const installed = await installCapture(engine.runtime, { integration, connector: 'contact', fields: ['email', 'phone'] });
    expect(installed).toMatchObject({ table: 'public.contacts', identifier: ['id'], fields: ['email', 'phone'] });

    await sql`insert into contacts (id, first_name, email) values (100, 'New', 'new@example.com')`.execute(database.app);
    await sql`update contacts set first_name = 'Renamed' where id = 100`.execute(database.app);
    expect(await outbox()).toEqual([{ entity_id: 100, connector: 'contact' }]);

    await sql`update contacts set phone = '+1 555 0100' where id = 100`.execute(database.app);
    await sql`update contacts set phone = '+1 555 0100' where id = 100`.execute(database.app); // no change: not captured
    await sql`delete from contacts where id = 100`.execute(database.app);
    // insert, the phone update, the delete: the export of each reads the row (or finds it gone).
    expect((await outbox()).map((r) => r.entity_id)).toEqual([100, 100, 100]);
  });

  it("should not capture tidesync's own writes (origin marker)", async () => {
    await installCapture(engine.runtime, { integration, connector: 'contact', fields: ['phone'] });
    await withTidesyncOrigin(database.app, (trx) => sql`update contacts set phone = 'written back' where id = 1`.execute(trx));
    expect(await outbox()).toEqual([]);
    // The marker is transaction-local: the next ordinary write is captured again.
    await sql`update contacts set phone = 'changed by the app' where id = 1`.execute(database.app);
    expect(await outbox()).toEqual([{ entity_id: 1, connector: 'contact' }]);
  });

  it('should default to the columns the job exports, and stop capturing once removed', async () => {
    const installed = await installCapture(engine.runtime, { integration, connector: 'contact' });
    expect(installed.fields).toEqual(['first_name', 'last_name', 'email', 'phone', 'company']);
    await sql`update contacts set updated_at = now() - interval '1 day' where id = 2`.execute(database.app);
    expect(await outbox()).toEqual([]);
    expect(await removeCapture(engine.runtime, { integration, connector: 'contact' })).toBe(true);
    await sql`update contacts set phone = 'after removal' where id = 2`.execute(database.app);
    expect(await outbox()).toEqual([]);
    expect(await removeCapture(engine.runtime, { integration, connector: 'contact' })).toBe(false);
  });

  it('should name a field that does not exist', async () => {
    await expect(installCapture(engine.runtime, { integration, connector: 'contact', fields: ['emial'] })).rejects.toThrow(
      "field 'emial' does not exist in table 'public.contacts'",
    );
  });

  it('should carry a local delete to the remote, end to end', async () => {
    await installCapture(engine.runtime, { integration, connector: 'contact', fields: ['email', 'phone'] });
    const relay = new OutboxRelay({ db, databaseUrl: database.url, client: engine.client });
    relay.start();
    try {
      await sql`update contacts set phone = 'exported first' where id = 3`.execute(database.app);
      // Exported means the remote answered: a create is recorded (without a remote id) before it is sent.
      const state = await waitFor('contact 3 exported', () =>
        db
          .selectFrom('sync_state')
          .selectAll()
          .where('entity_id', '=', '3')
          .where('integration_id', '=', demo.integration.id)
          .where('remote_id', 'is not', null)
          .executeTakeFirst(),
      );
      const remoteId = state.remote_id as string;
      expect((await demo.crm.get(remoteId))?.phone).toBe('exported first');

      await sql`delete from contacts where id = 3`.execute(database.app);
      await waitFor('contact 3 deleted on the remote', async () => (await demo.crm.get(remoteId)) === null);
      const after = await waitFor('sync state marked deleted', () =>
        db.selectFrom('sync_state').selectAll().where('entity_id', '=', '3').where('status', '=', 'deleted').executeTakeFirst(),
      );
      expect(after).toMatchObject({ remote_id: remoteId, snapshot: null });
      const execution = await waitFor('the delete run recorded', () =>
        db
          .selectFrom('job_execution')
          .selectAll()
          // Captured changes reach the connector's change stream: its pass names the entity.
          .where('workflow_id', '=', `stream/${integration}/contact`)
          .where(sql<boolean>`entity_ids @> '["3"]'::jsonb`)
          .where('written_count', '=', 1)
          .orderBy('id', 'desc')
          .executeTakeFirst(),
      );
      expect(execution).toMatchObject({ status: 'completed', written_count: 1, failed_count: 0 });
    } finally {
      await relay.stop();
    }
  });
});
