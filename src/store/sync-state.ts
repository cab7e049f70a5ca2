/** Reads and writes `tidesync.sync_state`. */
import { type ExpressionBuilder, type Kysely, type Selectable, sql } from 'kysely';
import type { PendingCreate, SyncState } from '../connectors/connector';
import { prepared } from './prepared';
import type { SyncStateTable, TidesyncDatabase } from './schema';

/** Identifies the entities of one connector on one integration. */
export interface SyncScope {
  readonly integrationId: number;
  readonly connector: string;
}

/** The condition that picks one entity's sync state row. */
function oneEntity(eb: ExpressionBuilder<TidesyncDatabase, 'sync_state'>, scope: SyncScope, key: string) {
  return eb.and([eb('integration_id', '=', scope.integrationId), eb('connector', '=', scope.connector), eb('entity_id', '=', key)]);
}

/** Loads the sync state of many entities in one query, by entity key. */
export async function loadSyncStates(
  db: Kysely<TidesyncDatabase>,
  scope: SyncScope,
  keys: readonly string[],
): Promise<Map<string, SyncState>> {
  if (keys.length === 0) return new Map();
  const { rows } = await selectStates(db, scope.integrationId, scope.connector, [...keys]);
  return new Map(rows.map((r) => [r.entity_id, toSyncState(r)]));
}

// A bulk page runs this twice per lock scope: compiled once (see `prepared.ts`).
const selectStates = prepared(3, (db: Kysely<TidesyncDatabase>, integrationId: number, connector: string, keys: string[]) =>
  db
    .selectFrom('sync_state')
    .selectAll()
    .where('integration_id', '=', integrationId)
    .where('connector', '=', connector)
    // One array parameter, not one per key: a bulk page asks for 500 keys at a time.
    .where('entity_id', '=', sql<string>`any(${keys}::text[])`),
);

function toSyncState(r: Selectable<SyncStateTable>): SyncState {
  return {
    remoteId: r.remote_id,
    snapshotHash: r.snapshot_hash,
    snapshot: r.snapshot,
    remoteVersion: r.remote_version,
    lastSyncedAt: r.last_synced_at,
    lastError: r.last_error,
    status: r.status,
    attempts: r.attempts,
    failedAt: r.failed_at,
    pendingCreate: r.pending_create,
  };
}

/** What `saveSynced` records about one entity the remote took. */
export interface SyncedEntity {
  readonly key: string;
  readonly remoteId: string;
  readonly remoteVersion: string | null;
  readonly snapshot: Record<string, unknown>;
  readonly hash: string;
}

/** Records a successful push: remote id, version and the snapshot that is now on the remote. */
export async function saveSynced(db: Kysely<TidesyncDatabase>, scope: SyncScope, entity: SyncedEntity): Promise<void> {
  const values = {
    remote_id: entity.remoteId,
    remote_version: entity.remoteVersion,
    snapshot: JSON.stringify(entity.snapshot),
    snapshot_hash: entity.hash,
    last_synced_at: new Date(),
    last_error: null,
    status: 'active' as const,
    attempts: 0,
    failed_at: null,
    // The answer is saved: whatever create was pending has its remote id now.
    pending_create: null,
    updated_at: new Date(),
  };
  await db
    .insertInto('sync_state')
    .values({ integration_id: scope.integrationId, connector: scope.connector, entity_id: entity.key, ...values })
    .onConflict((oc) => oc.columns(['integration_id', 'connector', 'entity_id']).doUpdateSet(values))
    .execute();
}

/**
 * A create the remote took whose data and hash are those of the create recorded as pending for it
 * (`savePendingCreates` / `insertPendingCreates`, under the same lock): its snapshot and hash are
 * taken from that record, so they need not travel again.
 */
export interface SyncedPendingCreate {
  readonly key: string;
  readonly remoteId: string;
  readonly remoteVersion: string | null;
  readonly fromPendingCreate: true;
}

/**
 * `saveSynced` for many entities (distinct keys) in one statement: a bulk export's batch. The rows
 * travel as one JSON parameter, not as 13 parameters a row, read as `jsonb`: `json_to_recordset`
 * parsed the text once into its records and then each snapshot again into `jsonb`;
 * `jsonb_to_recordset` parses once (the statement took about 15% less on 500 rows).
 *
 * A create answered as it was recorded pending (`SyncedPendingCreate`) sends no snapshot or hash:
 * the statement copies them from the row's pending create. Parsing the snapshots was most of the
 * statement: 500 answers cost PostgreSQL 17.7-18.0 us of CPU a row with them and 10.4 without
 * (one connection, 100,000 rows, measured from /proc). A row without a pending create (none was
 * recorded, or it was cleared meanwhile) is saved without a snapshot, so its next export compares
 * every field and writes it again: a redundant write, never a lost one.
 */
export async function saveSyncedMany(
  db: Kysely<TidesyncDatabase>,
  scope: SyncScope,
  entities: ReadonlyArray<SyncedEntity | SyncedPendingCreate>,
): Promise<void> {
  if (entities.length === 0) return;
  const rows = JSON.stringify(
    entities.map((e) =>
      'fromPendingCreate' in e
        ? { k: e.key, r: e.remoteId, v: e.remoteVersion }
        : { k: e.key, r: e.remoteId, v: e.remoteVersion, s: e.snapshot, h: e.hash },
    ),
  );
  await upsertSynced(db, scope.integrationId, scope.connector, rows, new Date());
}

/**
 * `saveSyncedMany` for entities that had no sync-state row when their states were read under
 * their locks: the creates of a writer that creates by key (`Writer.upsertsByKey`), which records
 * no pending create first. A plain insert, as `insertPendingCreates` (and with its fallback to the
 * upsert when a row appeared meanwhile).
 */
export async function insertSyncedMany(db: Kysely<TidesyncDatabase>, scope: SyncScope, entities: readonly SyncedEntity[]): Promise<void> {
  if (entities.length === 0) return;
  const rows = JSON.stringify(entities.map((e) => ({ k: e.key, r: e.remoteId, v: e.remoteVersion, s: e.snapshot, h: e.hash })));
  const now = new Date();
  await insertElseUpsert(
    db,
    () => insertSynced(db, scope.integrationId, scope.connector, rows, now),
    () => upsertSynced(db, scope.integrationId, scope.connector, rows, now),
  );
}

/** The rows of `saveSyncedMany`'s JSON (`[{ k, r, v, s?, h? }]`) inserted as synced now. */
function syncedRows(db: Kysely<TidesyncDatabase>, integrationId: number, connector: string, rows: string, now: Date) {
  return db
    .insertInto('sync_state')
    .columns([
      'integration_id',
      'connector',
      'entity_id',
      'remote_id',
      'remote_version',
      'snapshot',
      'snapshot_hash',
      'last_synced_at',
      'last_error',
      'status',
      'attempts',
      'failed_at',
      'pending_create',
      'updated_at',
    ])
    .expression(
      sql`select ${integrationId}::integer, ${connector}::text, r.k, r.r, r.v, r.s, r.h, ${now}::timestamptz,
        null::text, 'active'::text, 0, null::timestamptz, null::jsonb, ${now}::timestamptz
        from jsonb_to_recordset(${rows}::jsonb) as r(k text, r text, v text, s jsonb, h text)`,
    );
}

const insertSynced = prepared(4, syncedRows);

// Once per lock scope of a bulk page: compiled once (see `prepared.ts`).
const upsertSynced = prepared(4, (db: Kysely<TidesyncDatabase>, integrationId: number, connector: string, rows: string, now: Date) =>
  syncedRows(db, integrationId, connector, rows, now).onConflict((oc) =>
    oc.columns(['integration_id', 'connector', 'entity_id']).doUpdateSet((eb) => ({
      remote_id: eb.ref('excluded.remote_id'),
      remote_version: eb.ref('excluded.remote_version'),
      // Absent for a create answered as recorded: its pending create holds them.
      snapshot: sql`coalesce(excluded.snapshot, sync_state.pending_create -> 'data')`,
      snapshot_hash: sql`coalesce(excluded.snapshot_hash, sync_state.pending_create ->> 'hash')`,
      last_synced_at: eb.ref('excluded.last_synced_at'),
      last_error: null,
      status: 'active',
      attempts: 0,
      failed_at: null,
      // The answer is saved: whatever create was pending has its remote id now (as `saveSynced`).
      pending_create: null,
      updated_at: eb.ref('excluded.updated_at'),
    })),
  ),
);

/**
 * Records that an entity deleted locally is gone: `deleted` when the remote record was deleted,
 * `tombstone` when the writer cannot delete (the remote id is kept, so the record can be found).
 * An entity without a row gets one (deleted by key, see `Writer.upsertsByKey`), so its next
 * export knows it is gone and sends no second delete.
 */
export async function saveRemoved(
  db: Kysely<TidesyncDatabase>,
  scope: SyncScope,
  key: string,
  status: 'deleted' | 'tombstone',
): Promise<void> {
  const now = new Date();
  const values = {
    status,
    snapshot: null,
    snapshot_hash: null,
    last_synced_at: now,
    last_error: null,
    attempts: 0,
    failed_at: null,
    pending_create: null,
    updated_at: now,
  };
  await db
    .insertInto('sync_state')
    .values({ integration_id: scope.integrationId, connector: scope.connector, entity_id: key, ...values })
    .onConflict((oc) => oc.columns(['integration_id', 'connector', 'entity_id']).doUpdateSet(values))
    .execute();
}

/**
 * Records a create before it is sent, so that a lost answer is never forgotten: until its answer is
 * saved (`saveSynced` clears it) the next write of the entity sends this very create again. An
 * entity never exported gets its row now (status `active`, no remote id yet). A create already
 * pending is kept: it is the one that may be on the remote.
 */
export async function savePendingCreate(
  db: Kysely<TidesyncDatabase>,
  scope: SyncScope,
  key: string,
  pending: PendingCreate,
): Promise<void> {
  const value = JSON.stringify(pending);
  await db
    .insertInto('sync_state')
    .values({ integration_id: scope.integrationId, connector: scope.connector, entity_id: key, pending_create: value })
    .onConflict((oc) =>
      oc
        .columns(['integration_id', 'connector', 'entity_id'])
        .doUpdateSet({ pending_create: value, updated_at: new Date() })
        .where('sync_state.pending_create', 'is', null),
    )
    .execute();
}

/**
 * `savePendingCreate` for many entities (distinct keys) in one statement: a bulk export's lock
 * scope of creates. The rows travel as one JSON parameter (`jsonb_to_recordset`), as in
 * `saveSyncedMany`: 500 rows as VALUES were 2,500 parameters for the query builder to compile
 * and the server to parse, on every lock scope.
 */
export async function savePendingCreates(db: Kysely<TidesyncDatabase>, scope: SyncScope, creates: ScopeCreates): Promise<void> {
  if (creates.length === 0) return;
  await insertPending(db, scope.integrationId, scope.connector, pendingJson(creates), new Date());
}

/** Creates of one lock scope about to be sent, by entity key. */
type ScopeCreates = ReadonlyArray<{ readonly key: string; readonly pending: PendingCreate }>;

/** The one JSON parameter of the pending-create statements: `[{ k: key, p: pending }]`. */
function pendingJson(creates: ScopeCreates): string {
  return JSON.stringify(creates.map((c) => ({ k: c.key, p: c.pending })));
}

/** The rows of a scope's pending creates (`rows`: `pendingJson`), inserted. */
function pendingRows(db: Kysely<TidesyncDatabase>, integrationId: number, connector: string, rows: string, now: Date) {
  return db
    .insertInto('sync_state')
    .columns(['integration_id', 'connector', 'entity_id', 'pending_create', 'updated_at'])
    .expression(
      sql`select ${integrationId}::integer, ${connector}::text, r.k, r.p, ${now}::timestamptz
        from jsonb_to_recordset(${rows}::jsonb) as r(k text, p jsonb)`,
    );
}

// Once per lock scope of a bulk page: compiled once (see `prepared.ts`).
const insertPending = prepared(4, (db: Kysely<TidesyncDatabase>, integrationId: number, connector: string, rows: string, now: Date) =>
  pendingRows(db, integrationId, connector, rows, now).onConflict((oc) =>
    oc
      .columns(['integration_id', 'connector', 'entity_id'])
      .doUpdateSet((eb) => ({ pending_create: eb.ref('excluded.pending_create'), updated_at: eb.ref('excluded.updated_at') }))
      .where('sync_state.pending_create', 'is', null),
  ),
);

/**
 * `savePendingCreates` for entities that had no sync-state row when their states were read under
 * their locks (a bulk scope's first creates): a plain insert, without the conflict arbitration of
 * `insert ... on conflict` (about 30% less of PostgreSQL's time for 500 rows, measured in
 * isolation: 9.4-9.8 ms against 13.6-15.1 ms). Every writer that records a create holds the
 * entity's lock, but a few writers of other columns do not (a failure being recorded): a row that
 * appeared meanwhile makes the insert fail as a whole, with nothing written, and the creates are
 * then recorded as `savePendingCreates` does (inside a transaction, behind a savepoint).
 */
export async function insertPendingCreates(db: Kysely<TidesyncDatabase>, scope: SyncScope, creates: ScopeCreates): Promise<void> {
  if (creates.length === 0) return;
  const rows = pendingJson(creates);
  const now = new Date();
  await insertElseUpsert(
    db,
    () => insertPendingFresh(db, scope.integrationId, scope.connector, rows, now),
    () => insertPending(db, scope.integrationId, scope.connector, rows, now),
  );
}

/**
 * Runs a plain insert of rows believed new; when one of them exists after all (a duplicate key),
 * nothing of it is written and `upsert` writes them instead (inside a transaction, behind a
 * savepoint, so the failed insert does not end it).
 */
async function insertElseUpsert(
  db: Kysely<TidesyncDatabase>,
  insert: () => Promise<unknown>,
  upsert: () => Promise<unknown>,
): Promise<void> {
  const savepoint = db.isTransaction;
  if (savepoint) await sql`savepoint tidesync_fresh_rows`.execute(db);
  try {
    await insert();
  } catch (err) {
    if ((err as { code?: unknown }).code !== UNIQUE_VIOLATION) throw err;
    if (savepoint) await sql`rollback to savepoint tidesync_fresh_rows`.execute(db);
    await upsert();
  }
  if (savepoint) await sql`release savepoint tidesync_fresh_rows`.execute(db);
}

/** PostgreSQL's SQLSTATE of a duplicate key. */
const UNIQUE_VIOLATION = '23505';

const insertPendingFresh = prepared(4, pendingRows);

/** Forgets a pending create that the remote refused: it was not applied, nothing is on the remote. */
export async function clearPendingCreate(db: Kysely<TidesyncDatabase>, scope: SyncScope, key: string): Promise<void> {
  await db
    .updateTable('sync_state')
    .set({ pending_create: null, updated_at: new Date() })
    .where((eb) => oneEntity(eb, scope, key))
    .execute();
}

/** Records that the remote record is gone and the entity must not be exported until reset. */
export async function saveRemoteRemoved(db: Kysely<TidesyncDatabase>, scope: SyncScope, key: string, reason: string): Promise<void> {
  await db
    .updateTable('sync_state')
    .set({ status: 'remote_removed', last_error: reason, attempts: 0, failed_at: null, updated_at: new Date() })
    .where((eb) => oneEntity(eb, scope, key))
    .execute();
}

/** Forgets an entity's sync state, so its next export creates it anew; false when there was none. */
export async function resetSyncState(db: Kysely<TidesyncDatabase>, scope: SyncScope, key: string): Promise<boolean> {
  const result = await db
    .deleteFrom('sync_state')
    .where((eb) => oneEntity(eb, scope, key))
    .executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/** One entity's sync state with its key, as the client reports it. */
export interface EntitySyncState extends SyncState {
  readonly key: string;
}

/** Every entity's sync state of one connector on one integration, by entity key. */
export async function listSyncStates(db: Kysely<TidesyncDatabase>, scope: SyncScope): Promise<EntitySyncState[]> {
  const rows = await db
    .selectFrom('sync_state')
    .selectAll()
    .where('integration_id', '=', scope.integrationId)
    .where('connector', '=', scope.connector)
    .orderBy('entity_id')
    .execute();
  return rows.map((r) => ({ key: r.entity_id, ...toSyncState(r) }));
}
