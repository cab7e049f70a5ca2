/** The process activity: entity + sync state -> a planned change, a skip, or a failure. */
import { type Integration, type Processor, type SyncState, type Writer, upsertsByKey } from '../connectors/connector';
import type { StepDefinition } from '../jobs/definition';
import { changedFields } from '../sync/values';
import { canonicalJson, idempotencyKey, sha256Hex, stableKey } from '../sync/snapshot';
import { isOnRemote } from '../sync/standing';
import { MAX_RECORD_BYTES, tooLargeMessage } from './payload-limits';
import type { PlannedChange, ProcessStepInput, ProcessStepOutput, RecordFailure, Skipped } from './types';

/** How `planChanges` decides. */
export interface PlanOptions {
  /**
   * Write entities the remote already holds as well (a bulk export in mode `all`), unless they
   * were synced since `since` (by this export, or another writer meanwhile), under an idempotency
   * key made unique to this export by `key` (its workflow id): a retried page neither writes a
   * record twice nor sends it under a new key.
   */
  readonly force?: { readonly key: string; readonly since: Date };
  /**
   * The writer creates by the entity's key (`Writer.upsertsByKey`) and can delete: records no
   * pending create, so an entity missing locally that is not known to be gone remotely may still
   * have a record there (its create's answer was lost). Its delete is planned, by key when no
   * remote id is known; one never created is answered as already gone.
   */
  readonly deleteByKey?: boolean;
}

/** True when `change` writes what the sync state already holds: a forced write (mode `all`). */
export function isForced(change: PlannedChange, state: SyncState | undefined): boolean {
  return change.operation === 'update' && state?.status === 'active' && state.snapshotHash === change.hash;
}

/** `PlanOptions.deleteByKey` for a step's writer on an integration. */
export function deletesByKey(writer: Writer, integration: Integration): boolean {
  return writer.delete !== undefined && upsertsByKey(writer, integration);
}

/** True when the entity's remote record is known to be gone, or its removal recorded. */
function isRemoved(state: SyncState | undefined): boolean {
  return state?.status === 'deleted' || state?.status === 'tombstone' || state?.status === 'remote_removed';
}

/** Plans the changes of one step for entities read (and missing) by its reader. */
export async function planChanges(
  input: Pick<ProcessStepInput, 'integrationId' | 'connector' | 'items' | 'missing'>,
  step: StepDefinition,
  integration: Integration,
  processor: Processor,
  states: ReadonlyMap<string, SyncState>,
  options: PlanOptions = {},
): Promise<ProcessStepOutput> {
  const changes: PlannedChange[] = [];
  const skipped: Skipped[] = [];
  const failures: RecordFailure[] = [];
  const notFound: string[] = [];
  const keyOf = (key: string, previousHash: string | null, hash: string) =>
    idempotencyKey({ integrationId: input.integrationId, connector: input.connector, step: step.name, entityKey: key, previousHash, hash });

  for (const item of input.items) {
    if (item.tooLarge !== undefined) {
      failures.push({
        key: item.key,
        step: step.name,
        code: 'entity_too_large',
        message: tooLargeMessage('entity', item.key, item.tooLarge),
      });
      continue;
    }
    const state = states.get(item.key) ?? null;
    let result;
    try {
      result = await processor.process(item.entity, { integration, parameters: step.parameters, state });
    } catch (err) {
      // A processor that cannot map one record must not block the others.
      failures.push({ key: item.key, step: step.name, code: 'processor_failed', message: (err as Error).message });
      continue;
    }
    if (result.kind === 'skip') {
      skipped.push({ key: item.key, reason: result.reason });
      continue;
    }
    if (state?.status === 'remote_removed') {
      skipped.push({
        key: item.key,
        reason: `removed on the remote; not exported until \`tidesync reset ${integration.name} ${input.connector} ${item.key}\``,
      });
      continue;
    }
    // One serialisation for both the size check and the hash: the canonical JSON has the same
    // characters as the payload's JSON, its keys sorted (and bigints quoted).
    const json = canonicalJson(result.data);
    const bytes = Buffer.byteLength(json, 'utf8');
    if (bytes > MAX_RECORD_BYTES) {
      failures.push({
        key: item.key,
        step: step.name,
        code: 'changeset_too_large',
        message: tooLargeMessage('changeset', item.key, bytes),
      });
      continue;
    }
    const onRemote = isOnRemote(state) ? state : null;
    const hash = sha256Hex(json);
    // Type-aware: "20.50" and 20.5, or one instant in two time zones, are no change. A failed
    // entity is written even so: its write settles the failure.
    const unchanged = onRemote?.status === 'active' && changedFields(onRemote.snapshot, result.data).length === 0;
    const force = options.force;
    const forced = unchanged && force !== undefined && !(onRemote.lastSyncedAt && onRemote.lastSyncedAt >= force.since);
    if (unchanged && !forced) {
      skipped.push({ key: item.key, reason: 'unchanged since the last export' });
      continue;
    }
    const key = keyOf(item.key, onRemote?.snapshotHash ?? null, hash);
    changes.push({
      key: item.key,
      operation: onRemote ? 'update' : 'create',
      data: result.data,
      remoteId: onRemote?.remoteId ?? null,
      hash,
      idempotencyKey: forced ? stableKey(key, 'bulk-all', force.key) : key,
    });
  }

  for (const key of input.missing) {
    const state = states.get(key);
    // A create whose answer was lost may have made a remote record: the delete settles it first
    // (found by its pending create, or by the entity's key when the writer creates by key).
    const mayBeRemote = isOnRemote(state) || !!state?.pendingCreate || (options.deleteByKey === true && !isRemoved(state));
    if (!mayBeRemote) {
      // Never exported (or only failed to be), or its removal is already recorded: nothing to do remotely.
      if (state && state.status !== 'active' && state.status !== 'failed')
        skipped.push({ key, reason: `already ${state.status === 'deleted' ? 'deleted remotely' : 'tombstoned'}` });
      else notFound.push(key);
      continue;
    }
    changes.push({
      key,
      operation: 'delete',
      data: {},
      remoteId: state?.remoteId ?? null,
      hash: 'deleted',
      idempotencyKey: keyOf(key, state?.snapshotHash ?? null, 'deleted'),
    });
  }
  return { changes, skipped, failures, notFound };
}
