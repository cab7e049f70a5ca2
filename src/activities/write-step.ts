/**
 * The write activity's per-record logic: create, update with conflict detection and a three-way
 * merge under a conditional write, delete or tombstone, and the remote-gone policy.
 */
import type { Kysely } from 'kysely';
import {
  type Change,
  type Connector,
  type SyncState,
  type WriteContext,
  type WriteResult,
  type Writer,
  upsertsByKey,
} from '../connectors/connector';
import { PermanentRemoteError, RemoteNotFoundError, RemoteVersionConflictError, TransientRemoteError } from '../errors';
import type { TidesyncDatabase } from '../store/schema';
import { mergeRecord } from '../sync/merge';
import { changedFields } from '../sync/values';
import { stableKey } from '../sync/snapshot';
import { type SyncScope, clearPendingCreate, savePendingCreate, saveRemoteRemoved, saveRemoved, saveSynced } from '../store/sync-state';
import type { PlannedChange, RecordedConflict, WrittenRecord } from './types';
import type { Conflict } from '../sync/merge';

/** How often one update re-reads and re-merges when the remote keeps changing under it. */
const MAX_MERGE_ATTEMPTS = 5;

/** What writing one change did. */
export type ChangeOutcome =
  | { readonly kind: 'written'; readonly record: WrittenRecord; readonly conflicts: readonly Conflict[]; readonly warning?: string }
  | { readonly kind: 'skipped'; readonly reason: string; readonly conflicts: readonly Conflict[] }
  | { readonly kind: 'removed'; readonly warning: string };

/** Everything `writeChange` needs besides the change. */
export interface WriteChangeDeps {
  readonly db: Kysely<TidesyncDatabase>;
  readonly scope: SyncScope;
  readonly writer: Writer;
  readonly connector: Connector;
  readonly context: WriteContext;
}

/** Writes one planned change; see the module comment. */
export async function writeChange(deps: WriteChangeDeps, planned: PlannedChange, loaded: SyncState | undefined): Promise<ChangeOutcome> {
  const { db, scope, writer, context } = deps;
  let change: Change = { ...planned, partial: false, expectedVersion: null };
  // First the create whose answer was lost, if any: then the remote id is known and this change
  // updates (or deletes) that record instead of making a second one.
  const settled = loaded?.pendingCreate ? await settlePendingCreate(deps, change, loaded) : null;
  const state = settled?.state ?? loaded;
  if (settled?.written && settled.state.remoteId) {
    if (settled.state.snapshotHash === planned.hash && change.operation !== 'delete') {
      return { kind: 'written', record: { key: change.key, remoteId: settled.state.remoteId, operation: 'create' }, conflicts: [] };
    }
    const remoteId = settled.state.remoteId;
    change = {
      ...change,
      operation: change.operation === 'delete' ? 'delete' : 'update',
      remoteId,
      // Not the key of a create: this is another request, to another route.
      idempotencyKey: stableKey(change.idempotencyKey, 'after-create', remoteId),
    };
  }

  if (change.operation === 'delete') {
    // Removed by an earlier attempt of this activity.
    if (state && !state.pendingCreate && (state.status === 'deleted' || state.status === 'tombstone'))
      return {
        kind: 'written',
        record: { key: change.key, remoteId: change.remoteId, operation: state.status === 'deleted' ? 'delete' : 'tombstone' },
        conflicts: [],
      };
    if (writer.delete) await writer.delete(change, context);
    await saveRemoved(db, scope, change.key, writer.delete ? 'deleted' : 'tombstone');
    return {
      kind: 'written',
      record: { key: change.key, remoteId: change.remoteId, operation: writer.delete ? 'delete' : 'tombstone' },
      conflicts: [],
    };
  }

  // An earlier attempt of this activity already pushed exactly this change.
  if (state && state.snapshotHash === planned.hash && state.remoteId && state.status === 'active') {
    return { kind: 'written', record: { key: change.key, remoteId: state.remoteId, operation: change.operation }, conflicts: [] };
  }

  if (change.operation === 'create' || !change.remoteId) return create(deps, change, planned.hash);
  if (!writer.read) {
    // No way to see remote changes: a plain update of everything we map.
    try {
      const result = await writer.write(change, context);
      await saveSynced(db, scope, {
        key: change.key,
        remoteId: result.remoteId,
        remoteVersion: result.remoteVersion,
        snapshot: change.data,
        hash: planned.hash,
      });
      return { kind: 'written', record: { key: change.key, remoteId: result.remoteId, operation: 'update' }, conflicts: [] };
    } catch (err) {
      if (err instanceof RemoteNotFoundError) return remoteMissing(deps, change, planned.hash);
      throw err;
    }
  }

  for (let attempt = 1; attempt <= MAX_MERGE_ATTEMPTS; attempt++) {
    const remote = await writer.read(change.remoteId, context);
    if (!remote) return remoteMissing(deps, change, planned.hash);

    let toSend: Record<string, unknown>;
    let merged: Record<string, unknown>;
    let conflicts: readonly Conflict[] = [];
    if (state?.remoteVersion !== null && state?.remoteVersion !== undefined && remote.version === state.remoteVersion) {
      // Nobody changed the remote since our last write: send what changed locally.
      const fields = changedFields(state.snapshot, change.data);
      toSend = Object.fromEntries(fields.filter((f) => f in change.data).map((f) => [f, change.data[f]]));
      merged = { ...remote.data, ...change.data };
    } else {
      const result = mergeRecord(
        state?.snapshot ?? null,
        change.data,
        remote.data,
        context.integration.syncPriority,
        deps.connector.fieldRules,
      );
      ({ toSend, merged, conflicts } = result);
    }
    if (Object.keys(toSend).length === 0) {
      await saveSynced(db, scope, {
        key: change.key,
        remoteId: change.remoteId,
        remoteVersion: remote.version,
        snapshot: change.data,
        hash: planned.hash,
      });
      return { kind: 'skipped', reason: 'the remote already has these values', conflicts };
    }
    const partial = writer.supportsPartialUpdate === true;
    const body = partial ? toSend : Object.fromEntries(Object.keys(change.data).map((f) => [f, merged[f]]));
    try {
      const result = await writer.write(
        {
          ...change,
          data: body,
          partial,
          expectedVersion: remote.version,
          idempotencyKey: stableKey(change.idempotencyKey, remote.version),
        },
        context,
      );
      // The snapshot is what local looked like: the base of the next three-way merge.
      await saveSynced(db, scope, {
        key: change.key,
        remoteId: result.remoteId,
        remoteVersion: result.remoteVersion,
        snapshot: change.data,
        hash: planned.hash,
      });
      return { kind: 'written', record: { key: change.key, remoteId: result.remoteId, operation: 'update' }, conflicts };
    } catch (err) {
      if (err instanceof RemoteVersionConflictError) continue; // changed between our read and our write: merge again
      if (err instanceof RemoteNotFoundError) return remoteMissing(deps, change, planned.hash);
      throw err;
    }
  }
  throw new TransientRemoteError(`remote record ${change.remoteId} kept changing during ${MAX_MERGE_ATTEMPTS} read-merge-write attempts`);
}

async function create(deps: WriteChangeDeps, change: Change, hash: string): Promise<ChangeOutcome> {
  // Recorded first: if the answer is lost, the next write sends this create again (see
  // settlePendingCreate). A writer that creates by the entity's key needs no record: whatever
  // create comes next finds the record this one may have made.
  const pending = !upsertsByKey(deps.writer, deps.context.integration);
  if (pending) await savePendingCreate(deps.db, deps.scope, change.key, { idempotencyKey: change.idempotencyKey, hash, data: change.data });
  let result: WriteResult;
  try {
    result = await deps.writer.write({ ...change, operation: 'create', remoteId: null }, deps.context);
  } catch (err) {
    // Refused: not applied, so nothing of it is on the remote.
    if (pending && err instanceof PermanentRemoteError) await clearPendingCreate(deps.db, deps.scope, change.key);
    throw err;
  }
  await saveSynced(deps.db, deps.scope, {
    key: change.key,
    remoteId: result.remoteId,
    remoteVersion: result.remoteVersion,
    snapshot: change.data,
    hash,
  });
  return { kind: 'written', record: { key: change.key, remoteId: result.remoteId, operation: 'create' }, conflicts: [] };
}

/**
 * Sends the pending create again, with its own key and data: a remote that applied it answers from
 * its idempotency records (the record it made, with its id); one that did not applies it now.
 * Either way the answer is saved as what was last pushed (`written`), with the state as it is now.
 * A refusal means it was never applied: the pending create is dropped and the change goes on as
 * if it had never been sent.
 */
async function settlePendingCreate(
  deps: WriteChangeDeps,
  change: Change,
  state: SyncState,
): Promise<{ written: boolean; state: SyncState }> {
  const pending = state.pendingCreate;
  if (!pending) return { written: false, state };
  let result: WriteResult;
  try {
    result = await deps.writer.write(
      { ...change, operation: 'create', remoteId: null, data: pending.data, idempotencyKey: pending.idempotencyKey },
      deps.context,
    );
  } catch (err) {
    if (!(err instanceof PermanentRemoteError)) throw err;
    await clearPendingCreate(deps.db, deps.scope, change.key);
    return { written: false, state: { ...state, pendingCreate: null } };
  }
  const synced = {
    key: change.key,
    remoteId: result.remoteId,
    remoteVersion: result.remoteVersion,
    snapshot: pending.data,
    hash: pending.hash,
  };
  await saveSynced(deps.db, deps.scope, synced);
  const now: SyncState = {
    ...state,
    status: 'active',
    remoteId: result.remoteId,
    remoteVersion: result.remoteVersion,
    snapshot: pending.data,
    snapshotHash: pending.hash,
    lastError: null,
    attempts: 0,
    failedAt: null,
    pendingCreate: null,
  };
  return { written: true, state: now };
}

/** The remote record is gone: recreate it, or mark the entity remote-removed (the connector says). */
async function remoteMissing(deps: WriteChangeDeps, change: Change, hash: string): Promise<ChangeOutcome> {
  if (deps.connector.onRemoteMissing === 'mark_removed') {
    await saveRemoteRemoved(deps.db, deps.scope, change.key, `remote record ${change.remoteId} was removed on the remote`);
    return { kind: 'removed', warning: `remote record ${change.remoteId} is gone; marked remote-removed (reset it to export again)` };
  }
  const outcome = await create(deps, { ...change, idempotencyKey: stableKey(change.idempotencyKey, 'recreate', change.remoteId) }, hash);
  return outcome.kind === 'written'
    ? { ...outcome, warning: `remote record ${change.remoteId} was gone; created it again as ${outcome.record.remoteId}` }
    : outcome;
}

/** Conflicts as the execution record and the conflicts table keep them. */
export function toRecordedConflicts(key: string, conflicts: readonly Conflict[]): RecordedConflict[] {
  return conflicts.map((c) => ({ key, field: c.field, winner: c.winner, rule: c.rule }));
}
