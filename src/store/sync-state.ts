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
