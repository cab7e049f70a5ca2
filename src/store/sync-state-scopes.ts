/**
 * `tidesync.sync_state` for a bulk export's lock scope at once: the creates it records as pending
 * and the answers it saves, each in one statement whose rows travel as one JSON parameter.
 */
import { type Kysely, sql } from 'kysely';
import type { PendingCreate } from '../connectors/connector';
import { prepared } from './prepared';
import type { TidesyncDatabase } from './schema';
import type { SyncScope, SyncedEntity } from './sync-state';

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
