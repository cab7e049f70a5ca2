/**
 * Changes of a bulk page written with `Writer.writeBatch` under the locks of their entities (see
 * `locked-write.ts`): one lock scope for up to `BULK_LOCKED_ROWS` entities, in which the page read
 * their rows and sync states and planned their changes (`bulk-page.ts`); the changes go out in
 * batches of the writer's `maxBatchSize`, each as `write` would send it (the same idempotency keys,
 * the same conditional update on the last known version), and the sync states of the records the remote
 * took are saved in one statement before the locks are released. A record the remote refuses for
 * good fails alone; one that moved on remotely (412) or is gone (404) is written on its own, with
 * the read, merge or re-create of the per-entity path.
 *
 * One scope for several batches, rather than one per batch, because each scope costs a lock
 * transaction, two reads and a save: at 100 rows a batch that was 8 database round trips per 100
 * rows, and on a 2-core machine round trips are what a bulk export spends its time on.
 *
 * Creates are recorded as pending before the scope's first batch goes out (one plain insert for
 * the entities without a sync-state row, one upsert for the others), as the per-entity path
 * records its create: a batch whose answer is lost (the writer gave up while the remote still
 * applied it, or the worker died) leaves the key each create went out with, and the next
 * write of that entity sends it again under that key, so the remote answers from its idempotency
 * records instead of making a second record. A pending create whose data is still the entity's
 * goes out in the batch again under its key; one whose entity has changed since is written on its
 * own (the pending create first, then the change to that record).
 *
 * A writer that creates by the entity's key (`Writer.upsertsByKey`) records no pending creates: a
 * create whose answer was lost is planned and sent again like any other, and lands on the record
 * it made. The answers then carry their snapshots, and those of entities that had no row are
 * inserted plainly: one sync-state write per created entity instead of two.
 */
import { type BatchItemResult, type Change, type SyncState, upsertsByKey } from '../connectors/connector';
import { ConfigurationError, PermanentRemoteError, RemoteNotFoundError, RemoteVersionConflictError } from '../errors';
import { type SyncedEntity, clearPendingCreate } from '../store/sync-state';
import {
  type SyncedPendingCreate,
  insertPendingCreates,
  insertSyncedMany,
  savePendingCreates,
  saveSyncedMany,
} from '../store/sync-state-scopes';
import { stableKey } from '../sync/snapshot';
import { changedFields } from '../sync/values';
import { type LockedWriteContext, type RecordOutcome, failRecord, writeLocked } from './locked-write';
import type { PlannedChange } from './types';

interface Batched {
  readonly change: PlannedChange;
  readonly state: SyncState | undefined;
  readonly sent: Change;
}

/**
 * The most changes written under one lock scope. Every key is a lock held until the scope ends,
 * and PostgreSQL's lock table holds `max_locks_per_transaction` (64) times `max_connections`
 * (100) locks for the whole server by default: 500 keys a scope keep a few pages in flight well
 * inside it, whatever the page size.
 */
export const BULK_LOCKED_ROWS = 500;

/**
 * Writes changes planned under their entities' locks (at most `BULK_LOCKED_ROWS`, in the lock
 * scope they were planned in, from `states` read there); returns what became of each, by key.
 */
export async function writeBatchedLocked(
  ctx: LockedWriteContext,
  changes: readonly PlannedChange[],
  states: ReadonlyMap<string, SyncState>,
): Promise<Map<string, RecordOutcome>> {
  const outcomes = new Map<string, RecordOutcome>();
  const batch: Batched[] = [];
  const alone: Array<{ change: PlannedChange; state: SyncState | undefined }> = [];
  for (const change of changes) {
    const state = states.get(change.key);
    if (change.operation === 'delete' || (state?.pendingCreate && state.pendingCreate.hash !== change.hash)) {
      // A delete, or an entity whose lost create's data is no longer its own: written on its own,
      // as the per-entity path writes it (the lost create is sent again first, under its own key).
      alone.push({ change, state });
    } else {
      batch.push({ change, state, sent: asSent(ctx, change, state) });
    }
  }
  if (batch.length > 0) await sendBatches(ctx, batch, outcomes);
  for (const { change, state } of alone) outcomes.set(change.key, await writeLocked(ctx, change, state));
  return outcomes;
}

/**
 * Sends the creates and updates in batches of the writer's `maxBatchSize`, one after the other,
 * and saves the sync states of every record the remote took in one statement, also when a later
 * batch fails: the page's retry then finds those written and sends only the rest.
 */
async function sendBatches(ctx: LockedWriteContext, batch: readonly Batched[], outcomes: Map<string, RecordOutcome>): Promise<void> {
  const size = Math.max(1, ctx.write.writer.maxBatchSize ?? batch.length);
  const answers: Answers = { synced: [], fresh: [], byKey: upsertsByKey(ctx.write.writer, ctx.integration) };
  const again: Batched[] = [];
  // Recorded first, for the whole scope at once: if an answer is lost, the next write sends these
  // creates again with their keys. A create recorded but never sent (a batch before it failed)
  // goes out under that key later, which is as good as a new one. A writer that creates by key
  // needs no record: any later create of the entity finds the record a lost one made.
  // Entities without a sync-state row (read under their locks) get theirs by a plain insert.
  if (!answers.byKey) {
    const creates = batch.filter((b) => b.sent.operation === 'create');
    const pendingOf = (b: Batched) => ({
      key: b.change.key,
      pending: { idempotencyKey: b.sent.idempotencyKey, hash: b.change.hash, data: b.sent.data },
    });
    await insertPendingCreates(ctx.runtime.store, ctx.write.scope, creates.filter((b) => b.state === undefined).map(pendingOf));
    await savePendingCreates(ctx.runtime.store, ctx.write.scope, creates.filter((b) => b.state !== undefined).map(pendingOf));
  }
  try {
    for (let start = 0; start < batch.length; start += size)
      await sendBatch(ctx, batch.slice(start, start + size), outcomes, answers, again);
  } finally {
    await saveSyncedMany(ctx.runtime.store, ctx.write.scope, answers.synced);
    await insertSyncedMany(ctx.runtime.store, ctx.write.scope, answers.fresh);
  }
  // Changed remotely since our last sync, or gone: read, merge or re-create, as the per-entity path does.
  for (const b of again) outcomes.set(b.change.key, await writeLocked(ctx, b.change, b.state));
}

/**
 * The change as the per-entity path would send it: a create; or an update of the fields that
 * changed, conditional on the version last synced (writers that can read, so a remote change is
 * never overwritten blindly), under the same idempotency key.
 */
function asSent(ctx: LockedWriteContext, change: PlannedChange, state: SyncState | undefined): Change {
  // Built field by field, not spread from the planned change: spreading each of a page's changes
  // (whose shape is not the sent one's) was a visible part of the worker's time.
  const { key } = change;
  const pending = state?.pendingCreate;
  // The same create as the one that may already be on the remote: under the key it went out with.
  if (pending) {
    return {
      key,
      operation: 'create',
      data: pending.data,
      remoteId: null,
      idempotencyKey: pending.idempotencyKey,
      partial: false,
      expectedVersion: null,
    };
  }
  if (change.operation === 'create' || !change.remoteId) {
    return {
      key,
      operation: 'create',
      data: change.data,
      remoteId: null,
      idempotencyKey: change.idempotencyKey,
      partial: false,
      expectedVersion: null,
    };
  }
  const { operation, remoteId } = change;
  const writer = ctx.write.writer;
  const expectedVersion = writer.read !== undefined ? (state?.remoteVersion ?? null) : null;
  if (expectedVersion === null) {
    return { key, operation, data: change.data, remoteId, idempotencyKey: change.idempotencyKey, partial: false, expectedVersion: null };
  }
  const fields = state?.snapshot ? changedFields(state.snapshot, change.data).filter((f) => f in change.data) : [];
  const partial = writer.supportsPartialUpdate === true && fields.length > 0;
  return {
    key,
    operation,
    data: partial ? Object.fromEntries(fields.map((f) => [f, change.data[f]])) : change.data,
    remoteId,
    partial,
    expectedVersion,
    idempotencyKey: stableKey(change.idempotencyKey, expectedVersion),
  };
}

/** The sync states to save for the records the remote took. */
interface Answers {
  /** Saved by `saveSyncedMany` (a row exists, or may). */
  readonly synced: Array<SyncedEntity | SyncedPendingCreate>;
  /** Creates of entities without a sync-state row, with no pending create: inserted (`insertSyncedMany`). */
  readonly fresh: SyncedEntity[];
  /** The writer creates by key (`Writer.upsertsByKey`): no create was recorded pending. */
  readonly byKey: boolean;
}

/**
 * One `writeBatch` call: outcomes go into `outcomes`, the records the remote took into `answers`,
 * those to write on their own (412, 404) into `again`.
 */
async function sendBatch(
  ctx: LockedWriteContext,
  batch: readonly Batched[],
  outcomes: Map<string, RecordOutcome>,
  answers: Answers,
  again: Batched[],
): Promise<void> {
  const { writer, context } = ctx.write;
  if (!writer.writeBatch) throw new ConfigurationError(`writer '${ctx.step.writer}' has no writeBatch`);
  // Refused: not applied, so nothing of that create is on the remote.
  const refused = async (b: Batched) => {
    // (Recorded pending by `sendBatches`, or earlier: a writer that creates by key records none.)
    if (b.sent.operation === 'create' && (!answers.byKey || b.state?.pendingCreate)) {
      await clearPendingCreate(ctx.runtime.store, ctx.write.scope, b.change.key);
    }
  };
  let results: readonly BatchItemResult[];
  try {
    results = await writer.writeBatch(
      batch.map((b) => b.sent),
      context,
    );
  } catch (err) {
    // A whole batch refused for good fails each of its records with that message; anything
    // else (transient, rate limited) fails the page, which is retried.
    if (!(err instanceof PermanentRemoteError)) throw err;
    for (const b of batch) {
      await refused(b);
      outcomes.set(b.change.key, await failRecord(ctx, b.change.key, err));
    }
    return;
  }
  checkResults(ctx, batch, results);
  for (const [i, result] of results.entries()) {
    const b = batch[i] as Batched;
    if (result.ok) {
      const operation = b.sent.operation === 'create' ? 'create' : 'update';
      // The snapshot is the whole local record (the base of the next comparison), not what was sent.
      // A create went out as recorded pending (`sendBatches`; one whose recorded data is no longer
      // the entity's is written on its own), so that record holds its snapshot and hash already.
      // A writer that creates by key recorded none: its answers carry their snapshots.
      const key = b.change.key;
      if (operation === 'create' && !answers.byKey) {
        answers.synced.push({ key, remoteId: result.remoteId, remoteVersion: result.remoteVersion, fromPendingCreate: true });
      } else {
        const entity = {
          key,
          remoteId: result.remoteId,
          remoteVersion: result.remoteVersion,
          snapshot: b.change.data,
          hash: b.change.hash,
        };
        (b.state === undefined ? answers.fresh : answers.synced).push(entity);
      }
      outcomes.set(b.change.key, { kind: 'written', record: { key: b.change.key, remoteId: result.remoteId, operation }, conflicts: [] });
    } else if (result.error instanceof RemoteVersionConflictError || result.error instanceof RemoteNotFoundError) {
      again.push(b);
    } else {
      await refused(b);
      outcomes.set(b.change.key, await failRecord(ctx, b.change.key, result.error));
    }
  }
}

/** The writer's contract: one result per change, in order. */
function checkResults(ctx: LockedWriteContext, batch: readonly Batched[], results: readonly BatchItemResult[]): void {
  const mismatch = results.length !== batch.length || results.some((r, i) => r.key !== batch[i]?.change.key);
  if (mismatch) {
    throw new ConfigurationError(
      `writer '${ctx.step.writer}' answered a batch of ${batch.length} changes with ${results.length} results ` +
        `(${JSON.stringify(results.slice(0, 3).map((r) => r.key))}...): writeBatch must return one result per change, in order`,
    );
  }
}
