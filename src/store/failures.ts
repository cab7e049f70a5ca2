/**
 * Failed entities in `tidesync.sync_state` (status `failed`): marking them with the reason, the
 * attempts and the time, resolving failures that no longer matter, and listing them.
 */
import type { ExpressionBuilder, Kysely } from 'kysely';
import type { TidesyncDatabase } from './schema';
import type { SyncScope } from './sync-state';

/** Why an entity's change failed for good, as `saveFailed` records it. */
export interface EntityFailure {
  readonly key: string;
  /** The reason, with the remote's message when it gave one. */
  readonly error: string;
  /** Remote write attempts made for the change. */
  readonly attempts: number;
  /**
   * The hash of the change that failed: when the sync state already holds it as pushed (an
   * attempt wrote it after all), nothing is marked failed.
   */
  readonly hash?: string;
}

/**
 * Marks an entity `failed` with the reason, the attempts and the time, keeping what was last pushed
 * (remote id, snapshot) so a retry updates rather than creates. Returns false when the state shows
 * the change as written after all (then nothing changes).
 */
export async function saveFailed(db: Kysely<TidesyncDatabase>, scope: SyncScope, failure: EntityFailure): Promise<boolean> {
  const now = new Date();
  const values = { status: 'failed' as const, last_error: failure.error, attempts: failure.attempts, failed_at: now, updated_at: now };
  const row = await db
    .insertInto('sync_state')
    .values({ integration_id: scope.integrationId, connector: scope.connector, entity_id: failure.key, ...values })
    .onConflict((oc) => {
      const update = oc.columns(['integration_id', 'connector', 'entity_id']).doUpdateSet(values);
      const hash = failure.hash;
      return hash === undefined
        ? update
        : update.where((eb) =>
            eb.not(eb.and([eb('sync_state.status', '=', 'active'), eb('sync_state.snapshot_hash', 'is not distinct from', hash)])),
          );
    })
    .returning('entity_id')
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * Entities whose failed change was a create and which were then deleted locally: nothing is left to
 * do on the remote, so the failure is resolved (the state forgotten, or back to `tombstone` when an
 * older remote record may still exist). Returns the keys resolved.
 */
export async function resolveFailedNeverExported(
  db: Kysely<TidesyncDatabase>,
  scope: SyncScope,
  keys: readonly string[],
): Promise<string[]> {
  if (keys.length === 0) return [];
  const inScope = (eb: ExpressionBuilder<TidesyncDatabase, 'sync_state'>) =>
    eb.and([
      eb('integration_id', '=', scope.integrationId),
      eb('connector', '=', scope.connector),
      eb('entity_id', 'in', keys),
      eb('status', '=', 'failed'),
      eb('snapshot_hash', 'is', null),
      // A create that may have been applied is not "never exported": its delete must be sent.
      eb('pending_create', 'is', null),
    ]);
  const deleted = await db
    .deleteFrom('sync_state')
    .where((eb) => eb.and([inScope(eb), eb('remote_id', 'is', null)]))
    .returning('entity_id')
    .execute();
  const restored = await db
    .updateTable('sync_state')
    .set({ status: 'tombstone', last_error: null, attempts: 0, failed_at: null, updated_at: new Date() })
    .where((eb) => eb.and([inScope(eb), eb('remote_id', 'is not', null)]))
    .returning('entity_id')
    .execute();
  return [...deleted, ...restored].map((r) => r.entity_id);
}

/** A failed entity, as `tidesync failures` and `client.listFailures` report it. */
export interface FailedRecord {
  readonly integration: string;
  readonly connector: string;
  readonly key: string;
  /** The reason, with the remote's message when it gave one. */
  readonly lastError: string | null;
  readonly attempts: number;
  readonly failedAt: Date | null;
  /** The remote record, when the entity had been pushed before (a retry updates it). */
  readonly remoteId: string | null;
  readonly lastSyncedAt: Date | null;
}

/** Which failed records to list. */
export interface FailureFilter {
  readonly integration?: string;
  readonly connector?: string;
  /** Entity keys (needs `connector` to mean anything across connectors). */
  readonly keys?: readonly string[];
  readonly limit?: number;
}

/** Failed records, oldest failure first. */
export async function listFailedRecords(db: Kysely<TidesyncDatabase>, filter: FailureFilter = {}): Promise<FailedRecord[]> {
  let query = db
    .selectFrom('sync_state')
    .innerJoin('integration', 'integration.id', 'sync_state.integration_id')
    .select([
      'integration.name as integration',
      'sync_state.connector',
      'sync_state.entity_id',
      'sync_state.last_error',
      'sync_state.attempts',
      'sync_state.failed_at',
      'sync_state.remote_id',
      'sync_state.last_synced_at',
    ])
    .where('sync_state.status', '=', 'failed');
  if (filter.integration !== undefined) query = query.where('integration.name', '=', filter.integration);
  if (filter.connector !== undefined) query = query.where('sync_state.connector', '=', filter.connector);
  if (filter.keys !== undefined) {
    if (filter.keys.length === 0) return [];
    query = query.where('sync_state.entity_id', 'in', filter.keys);
  }
  const rows = await query
    .orderBy('sync_state.failed_at')
    .orderBy('integration.name')
    .orderBy('sync_state.connector')
    .orderBy('sync_state.entity_id')
    .limit(filter.limit ?? 10_000)
    .execute();
  return rows.map((r) => ({
    integration: r.integration,
    connector: r.connector,
    key: r.entity_id,
    lastError: r.last_error,
    attempts: r.attempts,
    failedAt: r.failed_at,
    remoteId: r.remote_id,
    lastSyncedAt: r.last_synced_at,
  }));
}

/** How many records are kept as `failed`, by integration and connector (for the metrics). */
export async function countFailedRecords(
  db: Kysely<TidesyncDatabase>,
): Promise<Array<{ integration: string; connector: string; failed: number }>> {
  const rows = await db
    .selectFrom('sync_state')
    .innerJoin('integration', 'integration.id', 'sync_state.integration_id')
    .select((eb) => ['integration.name as integration', 'sync_state.connector', eb.fn.countAll<string>().as('failed')])
    .where('sync_state.status', '=', 'failed')
    .groupBy(['integration.name', 'sync_state.connector'])
    .execute();
  return rows.map((r) => ({ integration: r.integration, connector: r.connector, failed: Number(r.failed) }));
}
