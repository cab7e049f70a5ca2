/**
 * Writing under an entity's lock, the rule both the per-entity export and the bulk export follow
 * so that neither ever leaves the remote older than local ("no stale overwrite"):
 *
 * 1. take the entity's advisory lock (`store/entity-locks.ts`): writes of one entity never overlap;
 * 2. read the row and its sync state again, and plan again from them;
 * 3. write what that plan says (nothing when the remote already has it), save the sync state;
 * 4. release the lock.
 *
 * So every remote write carries the row as it was once its writer held the lock, and the last
 * write of an entity carries a state at least as new as every write before it. A change committed
 * after that read is a new change: its own export (outbox, capture) or the next reconciliation
 * delivers it, and its write waits for this lock.
 */
import type { EntityId } from '../entity-id';
import { PermanentRemoteError } from '../errors';
import type { Integration, SyncState } from '../connectors/connector';
import type { StepDefinition } from '../jobs/definition';
import type { Runtime } from '../runtime';
import { recordConflicts } from '../store/conflicts';
import { saveFailed } from '../store/failures';
import { loadSyncStates } from '../store/sync-state';
import { type PlanOptions, isForced, planChanges } from './process-step';
import type { PlannedChange, ProcessStepOutput, RecordFailure, RecordedConflict, RunRef, WrittenRecord } from './types';
import { type WriteChangeDeps, toRecordedConflicts, writeChange } from './write-step';

/** What writing under a lock needs: the step, its integration, the writer and how to plan. */
export interface LockedWriteContext {
  readonly runtime: Pick<Runtime, 'services' | 'locks' | 'store'>;
  readonly run: RunRef;
  readonly step: StepDefinition;
  readonly integration: Integration;
  /** The writer (reporting to the breaker), the scope and the write context. */
  readonly write: WriteChangeDeps;
  readonly plan: PlanOptions;
  /** The attempt of the activity (recorded with a permanent rejection). */
  readonly attempt: number;
  /** The run that writes, for the conflicts table. */
  readonly workflow: { readonly workflowId: string; readonly runId: string } | null;
}

/** What became of one entity written under its lock. */
export type RecordOutcome =
  | { readonly kind: 'written'; readonly record: WrittenRecord; readonly conflicts: readonly RecordedConflict[]; readonly warning?: string }
  | { readonly kind: 'skipped'; readonly reason: string; readonly conflicts: readonly RecordedConflict[] }
  | { readonly kind: 'failed'; readonly failure: RecordFailure };

/** The rows of `ids` and their sync states read again, and their changes planned again (`found`: rows read). */
export async function replan(
  ctx: LockedWriteContext,
  ids: readonly EntityId[],
): Promise<{ planned: ProcessStepOutput; states: Map<string, SyncState>; found: number }> {
  const { step, runtime } = ctx;
  const read = await runtime.services.get('reader', step.reader).read(ids, step.parameters);
  const states = await loadSyncStates(runtime.store, ctx.write.scope, [...read.found.map((f) => f.key), ...read.missing]);
  const planned = await planChanges(
    { ...ctx.write.scope, items: read.found.map((f) => ({ key: f.key, entity: f.entity })), missing: read.missing },
    step,
    ctx.integration,
    runtime.services.get('processor', step.processor),
    states,
    ctx.plan,
  );
  return { planned, states, found: read.found.length };
}

/**
 * True when the sync state already holds `change` as written: an earlier attempt of this write
 * got through (its answer was lost), so it is reported as written without a second remote call.
 */
export function earlierAttemptWrote(change: PlannedChange, state: SyncState | undefined): boolean {
  if (!state) return false;
  if (change.operation === 'delete') return state.status === 'deleted' || state.status === 'tombstone';
  return state.status === 'active' && state.remoteId !== null && state.snapshotHash === change.hash;
}

/**
 * Writes one entity under its lock (see the module comment): `planned` is the change planned
 * before the lock, used as it is only when the sync state shows it written already.
 */
export async function writeOneLocked(ctx: LockedWriteContext, planned: PlannedChange, id: EntityId): Promise<RecordOutcome> {
  return ctx.runtime.locks.withLocks(ctx.write.scope, [planned.key], async () => {
    const { planned: fresh, states } = await replan(ctx, [id]);
    return settleFresh(ctx, planned, fresh, states.get(planned.key));
  });
}

/** Under the lock: writes what the fresh plan says for `planned.key`, or reports why not. */
export async function settleFresh(
  ctx: LockedWriteContext,
  planned: PlannedChange,
  fresh: ProcessStepOutput,
  state: SyncState | undefined,
): Promise<RecordOutcome> {
  const key = planned.key;
  const change = fresh.changes.find((c) => c.key === key);
  // A forced write (mode `all`) of what the sync state holds goes out as planned again.
  if (change && isForced(change, state)) return writeLocked(ctx, change, state);
  if (earlierAttemptWrote(planned, state)) return writeLocked(ctx, planned, state);
  if (change) return writeLocked(ctx, change, state);
  const failure = fresh.failures.find((f) => f.key === key);
  if (failure) {
    await saveFailed(ctx.runtime.store, ctx.write.scope, { key, error: failure.message, attempts: 0 });
    return { kind: 'failed', failure };
  }
  const skipped = fresh.skipped.find((s) => s.key === key);
  return { kind: 'skipped', reason: skipped?.reason ?? 'not found', conflicts: [] };
}

/**
 * Writes one change with `writeChange` while its lock is held; a permanent rejection marks the
 * record `failed` with the remote's message (only that record), anything else is thrown.
 */
export async function writeLocked(ctx: LockedWriteContext, change: PlannedChange, state: SyncState | undefined): Promise<RecordOutcome> {
  try {
    // A forced write must not be taken for one an earlier attempt made (`writeChange`'s shortcut).
    const outcome = await writeChange(ctx.write, change, state && isForced(change, state) ? { ...state, snapshotHash: null } : state);
    if (outcome.kind === 'removed') return { kind: 'skipped', reason: outcome.warning, conflicts: [] };
    if (outcome.conflicts.length > 0) {
      await recordConflicts(
        ctx.runtime.store,
        { ...ctx.run, key: change.key, workflowId: ctx.workflow?.workflowId ?? null, runId: ctx.workflow?.runId ?? null },
        outcome.conflicts,
      );
    }
    const conflicts = toRecordedConflicts(change.key, outcome.conflicts);
    if (outcome.kind === 'skipped') return { kind: 'skipped', reason: outcome.reason, conflicts };
    return { kind: 'written', record: outcome.record, conflicts, ...(outcome.warning ? { warning: outcome.warning } : {}) };
  } catch (err) {
    if (!(err instanceof PermanentRemoteError)) throw err;
    return failRecord(ctx, change.key, err);
  }
}

/** Marks one record `failed` with the remote's message: a permanent rejection of that record only. */
export async function failRecord(ctx: LockedWriteContext, key: string, err: PermanentRemoteError): Promise<RecordOutcome> {
  await saveFailed(ctx.runtime.store, ctx.write.scope, { key, error: err.message, attempts: ctx.attempt });
  return { kind: 'failed', failure: { key, step: ctx.step.name, code: err.code, message: err.message } };
}
