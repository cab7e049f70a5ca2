/** Reads and writes the outbox (`tidesync.outbox`): claiming pending rows and marking what became of them. */
import type { Kysely } from 'kysely';
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
