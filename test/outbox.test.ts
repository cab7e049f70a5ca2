import { type Kysely, sql } from 'kysely';
import pg from 'pg';
import { compareRemoteWithLocal, type Demo, setupDemo } from '../examples/demo/demo-setup';
import type { TidesyncDatabase } from '../src/store/schema';
import { upsertIntegration } from '../src/store/integrations';
import { enqueueExport, enqueueExports } from '../src/outbox/enqueue';
import { OutboxRelay } from '../src/outbox/relay';
import { createTestDatabase, startTestEngine, type TestEngine, uniqueName, waitFor } from './helpers';

describe('transactional outbox and relay', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: Kysely<TidesyncDatabase>;
  let demo: Demo;
  let engine: TestEngine;
  let relay: OutboxRelay;
  const integration = uniqueName('demo');

  beforeAll(async () => {
    database = await createTestDatabase();
    db = database.db;
    engine = await startTestEngine(database);
    demo = await setupDemo({ db: database.app, client: engine.client, contacts: 40, integrationName: integration });
    relay = new OutboxRelay({ db, databaseUrl: database.url, client: engine.client });
    relay.start();
  });
  afterAll(async () => {
    await relay?.stop();
    await engine?.close();
    await demo?.remote.stop();
    await database?.drop();
  });

  const remoteIdOf = async (id: number) =>
    (
      await db
        .selectFrom('sync_state')
        .select('remote_id')
        .where('integration_id', '=', demo.integration.id)
        .where('entity_id', '=', String(id))
        .executeTakeFirst()
    )?.remote_id;

  const outboxRows = (id: number) =>
    db
      .selectFrom('outbox')
      .selectAll()
      .where('integration', '=', integration)
      .where(sql<boolean>`entity_id = to_jsonb(${id}::int)`)
      .execute();

  it('should export nothing for a rolled-back transaction and export a committed one', async () => {
    await expect(
      db.transaction().execute(async (trx) => {
        await sql`update contacts set phone = 'rolled back' where id = 1`.execute(trx);
        await enqueueExport(trx, { integration, connector: 'contact', id: 1 });
        throw new Error('the app changed its mind');
      }),
    ).rejects.toThrow('the app changed its mind');
    await db.transaction().execute(async (trx) => {
      await sql`update contacts set phone = 'committed' where id = 2`.execute(trx);
      await enqueueExport(trx, { integration, connector: 'contact', id: 2 });
    });

    const remoteId = await waitFor('contact 2 on the remote', () => remoteIdOf(2));
    expect((await demo.crm.get(remoteId))?.phone).toBe('committed');
    expect(await outboxRows(1)).toEqual([]);
    expect(await remoteIdOf(1)).toBeUndefined();
    expect(await outboxRows(2)).toEqual([expect.objectContaining({ status: 'dispatched', attempts: 1 })]);
  });

  it('should enqueue from a plain pg client and from plain SQL in the same transaction, and roll both back', async () => {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      await client.query('begin');
      await client.query("update contacts set phone = 'pg rolled back' where id = 5");
      await enqueueExport(client, { integration, connector: 'contact', id: 5 });
      await client.query("update contacts set phone = 'sql rolled back' where id = 6");
      await client.query(`select tidesync.enqueue_export($1, 'contact', '6')`, [integration]);
      await client.query('rollback');

      await client.query('begin');
      await client.query("update contacts set phone = 'via pg' where id = 5");
      await enqueueExport(client, { integration, connector: 'contact', id: 5 });
      await client.query("update contacts set phone = 'via sql' where id = 6");
      // The object form names the identifier column; it is the same entity as the plain 6.
      await client.query(`select tidesync.enqueue_export($1, 'contact', '{"id": 6}')`, [integration]);
      await client.query('commit');
    } finally {
      await client.end();
    }
    const [five, six] = await Promise.all([5, 6].map((id) => waitFor(`contact ${id} on the remote`, () => remoteIdOf(id))));
    expect([(await demo.crm.get(five as string))?.phone, (await demo.crm.get(six as string))?.phone]).toEqual(['via pg', 'via sql']);
    // Only the committed transaction left rows, and the SQL route exported under the plain key 6.
    expect(
      (await outboxRows(5)).length +
        (
          await db
            .selectFrom('outbox')
            .selectAll()
            .where(sql<boolean>`entity_id = '{"id": 6}'::jsonb`)
            .execute()
        ).length,
    ).toBe(2);
    expect(await engine.client.recentExecutions({ limit: 50, integration })).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ workflow_id: `stream/${integration}/contact`, entity_ids: expect.arrayContaining(['6']) }),
      ]),
    );
    // Later tests cast entity ids to integers.
    await db
      .deleteFrom('outbox')
      .where(sql<boolean>`jsonb_typeof(entity_id) = 'object'`)
      .execute();
  });

  it.each([
    [`select tidesync.enqueue_export('', 'contact', '1')`, `integration '' is not valid: expected a non-empty string`],
    [`select tidesync.enqueue_export('demo', null, '1')`, 'connector null is not valid: expected a non-empty string'],
    [`select tidesync.enqueue_export('demo', 'contact', 'true')`, 'entity id true is not valid'],
    [`select tidesync.enqueue_export('demo', 'contact', '""')`, 'entity id "" is not valid'],
    [`select tidesync.enqueue_export('demo', 'contact', '{"id": [1]}')`, 'entity id {"id": [1]} is not valid'],
    [`select tidesync.enqueue_exports('demo', 'contact', '[]')`, 'ids [] is not valid: expected a non-empty JSON array'],
  ])('should refuse %s naming the bad value, and insert nothing', async (query, message) => {
    const before = await db.selectFrom('outbox').select(db.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    await expect(sql.raw(query).execute(database.app)).rejects.toThrow(message);
    await expect(
      enqueueExport({ query: async () => undefined } as never, { integration: 'demo', connector: 'contact', id: true as never }),
    ).rejects.toThrow('entity id true is not valid');
    const after = await db.selectFrom('outbox').select(db.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    expect(after.n).toBe(before.n);
  });

  it('should fold a burst of 1,000 updates to 10 entities into at most two writes each', async () => {
    const ids = Array.from({ length: 10 }, (_, i) => 11 + i);
    await db.transaction().execute((trx) => enqueueExports(trx, { integration, connector: 'contact', ids }));
    await waitFor('the 10 contacts on the remote', async () => (await Promise.all(ids.map(remoteIdOf))).every(Boolean));
    await waitForIdle();
    demo.remote.resetStats();

    // 1,000 committed transactions, 20 at a time, each changing one of the 10 contacts, spread over
    // about five seconds: far longer than one export takes, so passes would repeat without coalescing.
    let next = 0;
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        for (let i = next++; i < 1000; i = next++) {
          const id = ids[i % ids.length] as number;
          await db.transaction().execute(async (trx) => {
            await sql`update contacts set phone = ${`burst-${i}`} where id = ${id}`.execute(trx);
            await enqueueExport(trx, { integration, connector: 'contact', id });
          });
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }),
    );

    await waitForIdle();
    const comparison = await compareRemoteWithLocal(demo, database.app, engine.client, ids);
    expect(comparison.mismatches).toEqual([]);
    const writes = demo.remote.stats().writesByContact;
    for (const id of ids) {
      const remoteId = (await remoteIdOf(id)) as string;
      // Named in the failure message: which contact got how many writes.
      expect({ id, writes: Math.min(Math.max(writes[remoteId] ?? 0, 1), 2) }).toEqual({ id, writes: writes[remoteId] });
    }
    const phones = await sql<{ phone: string }>`select phone from contacts where id = any(${ids}) order by id`.execute(database.app);
    expect(phones.rows.every((r) => r.phone.startsWith('burst-'))).toBe(true);
  });

  it('should let two relays run side by side and dispatch each row once', async () => {
    const second = new OutboxRelay({ db, databaseUrl: database.url, client: engine.client });
    second.start();
    try {
      const ids = Array.from({ length: 15 }, (_, i) => 21 + i);
      for (const id of ids) {
        await db.transaction().execute((trx) => enqueueExport(trx, { integration, connector: 'contact', id }));
      }
      await waitFor('15 rows dispatched', async () => {
        const rows = await db
          .selectFrom('outbox')
          .select('status')
          .where(sql<boolean>`(entity_id)::int between 21 and 35`)
          .execute();
        return rows.length === 15 && rows.every((r) => r.status === 'dispatched');
      });
      const rows = await db
        .selectFrom('outbox')
        .select(['attempts'])
        .where(sql<boolean>`(entity_id)::int between 21 and 35`)
        .execute();
      expect(rows.map((r) => r.attempts)).toEqual(Array(15).fill(1));
      await waitForIdle();
      const writes = demo.remote.stats().writesByContact;
      for (const id of ids) expect(writes[(await remoteIdOf(id)) as string]).toBe(1);
    } finally {
      await second.stop();
    }
  });

  it('should give a row dispatched twice (relay crash before the mark) no second effect', async () => {
    await db.transaction().execute(async (trx) => {
      await sql`update contacts set phone = 'dispatched twice' where id = 37`.execute(trx);
      await enqueueExport(trx, { integration, connector: 'contact', id: 37 });
    });
    await waitFor('contact 37 exported', async () => (await compareRemoteWithLocal(demo, database.app, engine.client, [37])).matches);
    await waitForIdle();
    const writes = demo.remote.stats().writes;
    // As if the relay had crashed after signalling Temporal but before marking the row.
    await db
      .updateTable('outbox')
      .set({ status: 'pending' })
      .where(sql<boolean>`entity_id = to_jsonb(37)`)
      .execute();
    await waitFor('the row dispatched again', async () =>
      (await outboxRows(37)).every((r) => r.status === 'dispatched' && r.attempts === 2),
    );
    await waitForIdle();
    expect(demo.remote.stats().writes).toBe(writes);
    expect((await compareRemoteWithLocal(demo, database.app, engine.client, [37])).matches).toBe(true);
  });

  it('should mark rows of a disabled or one-way integration skipped with the reason, never drop them', async () => {
    const disabled = uniqueName('off');
    await upsertIntegration(db, { type: 'demo', name: disabled, enabled: false, transport: demo.integration.transport });
    const oneWay = uniqueName('oneway');
    await upsertIntegration(db, { type: 'demo', name: oneWay, twoWaySync: false, transport: demo.integration.transport });
    await db.transaction().execute(async (trx) => {
      await enqueueExport(trx, { integration: disabled, connector: 'contact', id: 36 });
      await enqueueExport(trx, { integration: oneWay, connector: 'contact', id: 36 });
      await enqueueExport(trx, { integration: 'no_such_integration', connector: 'contact', id: 36 });
    });
    const rows = await waitFor('three rows skipped', async () => {
      const found = await db
        .selectFrom('outbox')
        .select(['integration', 'status', 'skip_reason'])
        .where('integration', 'in', [disabled, oneWay, 'no_such_integration'])
        .orderBy('id')
        .execute();
      return found.every((r) => r.status === 'skipped') && found.length === 3 && found;
    });
    expect(rows.map((r) => r.skip_reason)).toEqual([
      `integration '${disabled}' is disabled`,
      `integration '${oneWay}' has two-way sync turned off`,
      expect.stringMatching(/^unknown integration 'no_such_integration'/),
    ]);
    expect(await engine.client.scheduleExport({ integration: disabled, connector: 'contact', id: 36 })).toEqual({
      scheduled: false,
      key: '36',
      reason: `integration '${disabled}' is disabled`,
    });
  });

  it('should reject bad input to enqueueExport with the value named', async () => {
    await expect(
      db.transaction().execute((trx) => enqueueExport(trx, { integration, connector: 'contact', id: { tenant: null } as never })),
    ).rejects.toThrow('entity id {"tenant":null} is not valid');
    await expect(db.transaction().execute((trx) => enqueueExport(trx, { integration: '', connector: 'contact', id: 1 }))).rejects.toThrow(
      'integration "" is not valid: expected a non-empty string',
    );
  });

  /** Waits until every outbox row is dispatched and the connector's change stream has nothing left to export. */
  async function waitForIdle(): Promise<void> {
    await waitFor('pending outbox rows to be dispatched', async () => {
      const pending = await db.selectFrom('outbox').select('id').where('status', '=', 'pending').execute();
      return pending.length === 0;
    });
    await waitFor('the change stream to be idle', async () => {
      const stream = await engine.client.streamStatus(integration, 'contact');
      return stream === null || (stream.pending === 0 && stream.inFlight === 0);
    });
  }
});
