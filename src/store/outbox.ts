/** Reads and writes the outbox (`tidesync.outbox`): claiming pending rows and marking what became of them. */
import { type Kysely, sql } from 'kysely';
import type { EntityId } from '../entity-id';
import type { TidesyncDatabase } from './schema';

/** A pending outbox row, claimed by a relay. */
export interface ClaimedRow {
  readonly id: string;
  readonly integration: string;
  readonly connector: string;
  readonly entityId: EntityId;
}

/**
 * Claims up to `limit` pending rows, oldest first, with `FOR UPDATE SKIP LOCKED`: run it inside a
 * transaction, so relays side by side never claim the same row and a crash leaves rows pending.
 */
export async function claimPendingRows(trx: Kysely<TidesyncDatabase>, limit: number): Promise<ClaimedRow[]> {
  const rows = await trx
    .selectFrom('outbox')
    .select(['id', 'integration', 'connector', 'entity_id'])
    .where('status', '=', 'pending')
    .orderBy('id')
    .limit(limit)
    .forUpdate()
    .skipLocked()
    .execute();
  return rows.map((r) => ({ id: r.id, integration: r.integration, connector: r.connector, entityId: r.entity_id }));
}

/** Marks rows handed to Temporal. */
export async function markDispatched(trx: Kysely<TidesyncDatabase>, rowIds: readonly string[]): Promise<void> {
  if (rowIds.length === 0) return;
  await trx
    .updateTable('outbox')
    .set((eb) => ({ status: 'dispatched', dispatched_at: new Date(), attempts: eb('attempts', '+', 1) }))
    .where('id', 'in', rowIds)
    .execute();
}

/** Marks rows that will not be exported, keeping the reason (a disabled integration, an unknown connector). */
export async function markSkipped(trx: Kysely<TidesyncDatabase>, reason: string, rowIds: readonly string[]): Promise<void> {
  if (rowIds.length === 0) return;
  await trx
    .updateTable('outbox')
    .set({ status: 'skipped', skip_reason: reason, dispatched_at: new Date() })
    .where('id', 'in', rowIds)
    .execute();
}

/** Where the outbox stands, for `tidesync outbox` and the metrics. */
export interface OutboxStats {
  readonly pending: number;
  /** Age of the oldest pending row in seconds; 0 when none is pending. */
  readonly oldestPendingSeconds: number;
  /** Rows dispatched in the last minute and the last five minutes. */
  readonly dispatchedLastMinute: number;
  readonly dispatchedLast5Minutes: number;
  /** Pending rows by integration and connector. */
  readonly byConnector: ReadonlyArray<{ integration: string; connector: string; pending: number; oldestPendingSeconds: number }>;
}

/** Counts pending rows (on the relay's partial index) and recent dispatches. */
export async function outboxStats(db: Kysely<TidesyncDatabase>): Promise<OutboxStats> {
  const byConnector = await db
    .selectFrom('outbox')
    .select((eb) => [
      'integration',
      'connector',
      eb.fn.countAll<string>().as('pending'),
      sql<string>`coalesce(extract(epoch from clock_timestamp() - min(created_at)), 0)`.as('oldest'),
    ])
    .where('status', '=', 'pending')
    .groupBy(['integration', 'connector'])
    .orderBy('integration')
    .orderBy('connector')
    .execute();
  const recent = await db
    .selectFrom('outbox')
    .select([
      sql<string>`count(*) filter (where dispatched_at > clock_timestamp() - interval '1 minute')`.as('minute'),
      sql<string>`count(*)`.as('five'),
    ])
    .where('status', '=', 'dispatched')
    .where('dispatched_at', '>', sql<Date>`clock_timestamp() - interval '5 minutes'`)
    .executeTakeFirstOrThrow();
  const rows = byConnector.map((r) => ({
    integration: r.integration,
    connector: r.connector,
    pending: Number(r.pending),
    oldestPendingSeconds: Number(r.oldest),
  }));
  return {
    pending: rows.reduce((n, r) => n + r.pending, 0),
    oldestPendingSeconds: rows.reduce((max, r) => Math.max(max, r.oldestPendingSeconds), 0),
    dispatchedLastMinute: Number(recent.minute),
    dispatchedLast5Minutes: Number(recent.five),
    byConnector: rows,
  };
}

/**
 * Deletes dispatched and skipped rows older than `olderThanMs`, at most `limit` per call (so a
 * large backlog is removed in short transactions). Pending rows are never removed.
 */
export async function purgeOutbox(db: Kysely<TidesyncDatabase>, olderThanMs: number, limit = 10_000): Promise<number> {
  const cutoff = new Date(Date.now() - olderThanMs);
  const result = await db
    .deleteFrom('outbox')
    .where('id', 'in', (eb) =>
      eb
        .selectFrom('outbox')
        .select('id')
        .where('status', 'in', ['dispatched', 'skipped'])
        .where('dispatched_at', '<', cutoff)
        .limit(limit),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
