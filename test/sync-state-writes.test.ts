/**
 * The two sync-state writes of every created record, on the real PostgreSQL: a bulk scope's
 * pending creates (one statement) and then their answers (one statement). The answers rewrite rows
 * inserted a moment before; `sync_state` keeps room on its pages for that (migration
 * `2026_12_21_001_sync_state_room`), so the rewrite stays on the row's page without a new index
 * entry (a heap-only update), which the transaction's own statistics show. An answer to a create
 * takes its snapshot and hash from the create recorded pending.
 */
import { type Kysely, sql } from 'kysely';
import { loadSyncStates } from '../src/store/sync-state';
import { insertPendingCreates, savePendingCreates, saveSyncedMany } from '../src/store/sync-state-scopes';
import type { TidesyncDatabase } from '../src/store/schema';
import { createTestDatabase } from './helpers';

const ROWS = 500;

describe('sync-state writes of a bulk scope', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let integrationId: number;

  beforeAll(async () => {
    database = await createTestDatabase();
    const row = await database.db
      .insertInto('integration')
      .values({ type: 'demo', name: 'writes', transport: JSON.stringify({}) })
      .returning('id')
      .executeTakeFirstOrThrow();
    integrationId = row.id;
  });
  afterAll(async () => {
    await database?.drop();
  });

  const data = (i: number) => ({ id: i, firstName: `First ${i}`, email: `p${i}@example.com`, note: 'quote " and \\ backslash' });
  const pendingOf = (key: string) => ({ key, pending: { idempotencyKey: `idem-${key}`, hash: `hash-${key}`, data: data(Number(key)) } });

  it('should save pending creates and then their answers, the answers rewriting the rows in place', async () => {
    const scope = { integrationId, connector: 'contact' };
    const keys = Array.from({ length: ROWS }, (_, i) => String(i + 1));
    const counts = await database.db.transaction().execute(async (trx: Kysely<TidesyncDatabase>) => {
      await insertPendingCreates(
        trx,
        scope,
        keys.map((key) => ({ key, pending: { idempotencyKey: `idem-${key}`, hash: `hash-${key}`, data: data(Number(key)) } })),
      );
      const pending = await loadSyncStates(trx, scope, keys);
      expect(pending.get('7')?.pendingCreate).toEqual({ idempotencyKey: 'idem-7', hash: 'hash-7', data: data(7) });
      expect(pending.get('7')?.remoteId).toBeNull();
      // The creates went out as recorded: their answers carry no snapshot, the pending create has it.
      await saveSyncedMany(
        trx,
        scope,
        keys.map((key) => ({ key, remoteId: `c_${key}`, remoteVersion: '1', fromPendingCreate: true as const })),
      );
      const table = `${database.databases.schema}.sync_state`;
      const { rows } = await sql<{ updated: string; hot: string }>`
        select pg_stat_get_xact_tuples_updated(${table}::regclass) as updated,
               pg_stat_get_xact_tuples_hot_updated(${table}::regclass) as hot`.execute(trx);
      return { updated: Number(rows[0]?.updated), hot: Number(rows[0]?.hot) };
    });
    const states = await loadSyncStates(database.db, scope, keys);
    expect(states.size).toBe(ROWS);
    expect(states.get('500')).toMatchObject({
      remoteId: 'c_500',
      remoteVersion: '1',
      snapshot: data(500),
      snapshotHash: 'hash-500',
      pendingCreate: null,
      status: 'active',
    });
    expect(counts.updated).toBe(ROWS);
    // With full pages (fillfactor 100) next to none of these stay on their page.
    expect(counts.hot).toBeGreaterThanOrEqual(ROWS * 0.8);
  });

  it('should save the snapshots that answers carry, and none for a create whose pending record is gone', async () => {
    const scope = { integrationId, connector: 'answers' };
    await insertPendingCreates(
      database.db,
      scope,
      ['1', '2'].map((key) => pendingOf(key)),
    );
    // Entity 2's pending create is cleared meanwhile (as when the remote refused it).
    await database.db
      .updateTable('sync_state')
      .set({ pending_create: null })
      .where('connector', '=', 'answers')
      .where('entity_id', '=', '2')
      .execute();
    await saveSyncedMany(database.db, scope, [
      { key: '1', remoteId: 'c_1', remoteVersion: '1', fromPendingCreate: true },
      { key: '2', remoteId: 'c_2', remoteVersion: '1', fromPendingCreate: true },
      // An update answered: the snapshot travels with it, and replaces the one saved before.
      { key: '3', remoteId: 'c_3', remoteVersion: '2', snapshot: data(33), hash: 'hash-33' },
    ]);
    const states = await loadSyncStates(database.db, scope, ['1', '2', '3']);
    expect(states.get('1')).toMatchObject({ remoteId: 'c_1', snapshot: data(1), snapshotHash: 'hash-1', pendingCreate: null });
    // No snapshot to compare with: its next export writes it again rather than skip it.
    expect(states.get('2')).toMatchObject({ remoteId: 'c_2', snapshot: null, snapshotHash: null, pendingCreate: null, status: 'active' });
    expect(states.get('3')).toMatchObject({ remoteId: 'c_3', remoteVersion: '2', snapshot: data(33), snapshotHash: 'hash-33' });
  });

  it('should delete the sync states of a deleted integration, and only its (the cascade without a foreign key)', async () => {
    const other = await database.db
      .insertInto('integration')
      .values({ type: 'demo', name: 'deleted-later', transport: JSON.stringify({}) })
      .returning('id')
      .executeTakeFirstOrThrow();
    const keys = ['1', '2', '3'];
    const synced = keys.map((key) => ({ key, remoteId: `c_${key}`, remoteVersion: '1', snapshot: data(Number(key)), hash: `hash-${key}` }));
    const kept = { integrationId, connector: 'kept' };
    const gone = { integrationId: other.id, connector: 'kept' };
    await saveSyncedMany(database.db, kept, synced);
    await saveSyncedMany(database.db, gone, synced);
    expect((await loadSyncStates(database.db, gone, keys)).size).toBe(3);
    await database.db.deleteFrom('integration').where('id', '=', other.id).execute();
    expect((await loadSyncStates(database.db, gone, keys)).size).toBe(0);
    expect((await loadSyncStates(database.db, kept, keys)).size).toBe(3);
  });

  it.each([
    ['on its own', false],
    ['in a transaction', true],
  ])(
    'should record pending creates %s when a row appeared since the states were read (the insert fails, the upsert takes over)',
    async (_, inTransaction) => {
      const scope = { integrationId, connector: `appeared-${String(inTransaction)}` };
      // A row the insert did not expect: a failure recorded for entity 2 by a writer without its lock.
      await database.db
        .insertInto('sync_state')
        .values({ integration_id: integrationId, connector: scope.connector, entity_id: '2', last_error: 'refused', attempts: 3 })
        .execute();
      const record = async (db: Kysely<TidesyncDatabase>) => {
        await insertPendingCreates(db, scope, ['1', '2', '3'].map(pendingOf));
        // The transaction is still usable afterwards: the failed insert was rolled back to its savepoint.
        return loadSyncStates(db, scope, ['1', '2', '3']);
      };
      const states = inTransaction ? await database.db.transaction().execute(record) : await record(database.db);
      expect([...states.keys()].sort()).toEqual(['1', '2', '3']);
      for (const key of ['1', '2', '3']) expect(states.get(key)?.pendingCreate).toEqual(pendingOf(key).pending);
      expect(states.get('2')).toMatchObject({ lastError: 'refused', attempts: 3 });
      expect((await loadSyncStates(database.db, scope, ['1', '2', '3'])).size).toBe(3);
    },
  );

  it('should refuse a second pending create over one a plain insert recorded, keeping the first (the one that may be on the remote)', async () => {
    const scope = { integrationId, connector: 'kept-first' };
    await insertPendingCreates(database.db, scope, [pendingOf('5')]);
    await savePendingCreates(database.db, scope, [
      { key: '5', pending: { idempotencyKey: 'idem-other', hash: 'hash-other', data: data(6) } },
    ]);
    expect((await loadSyncStates(database.db, scope, ['5'])).get('5')?.pendingCreate).toEqual(pendingOf('5').pending);
  });
});
