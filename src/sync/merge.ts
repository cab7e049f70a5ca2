/**
 * Three-way merge of one record: the base (what local looked like at the last sync), the local
 * record now, and the remote record now. Remote changes to fields we did not change are kept; a
 * field changed on both sides to different values is a conflict, decided by a per-field rule or
 * else by the integration's sync priority. Pure code.
 */
import type { SyncPriority } from '../connectors/connector';
import { equalValues } from './values';

/** Which side owns a field when both changed it; overrides the integration's priority. */
export type FieldRules = Readonly<Record<string, SyncPriority>>;

/** A field changed on both sides, and what was decided. */
export interface Conflict {
  readonly field: string;
  readonly base: unknown;
  readonly local: unknown;
  readonly remote: unknown;
  /** The side whose value was kept. */
  readonly winner: SyncPriority;
  /** Why: the connector's per-field rule, or the integration's sync priority. */
  readonly rule: 'field_rule' | 'priority';
}

/** The merged record and what it took to get there. */
export interface MergeResult {
  /** Every field of local and remote, merged. */
  readonly merged: Record<string, unknown>;
  /** Fields whose merged value differs from the remote's: what must be sent. */
  readonly toSend: Record<string, unknown>;
  readonly conflicts: readonly Conflict[];
}

/**
 * Merges `local` into `remote` against `base`. Only fields the local side maps (keys of `local`)
 * are ours to write; other remote fields are never touched.
 */
export function mergeRecord(
  base: Record<string, unknown> | null,
  local: Record<string, unknown>,
  remote: Record<string, unknown>,
  priority: SyncPriority,
  rules: FieldRules = {},
): MergeResult {
  const merged: Record<string, unknown> = { ...remote };
  const toSend: Record<string, unknown> = {};
  const conflicts: Conflict[] = [];
  for (const field of Object.keys(local)) {
    const baseValue = base ? base[field] : undefined;
    const localChanged = !base || !equalValues(baseValue, local[field]);
    const remoteChanged = !base || !equalValues(baseValue, remote[field]);
    let value: unknown;
    if (equalValues(local[field], remote[field])) {
      // Both sides agree (perhaps written differently): nothing to decide or send.
      value = remote[field];
    } else if (localChanged && remoteChanged && base) {
      const rule = rules[field];
      const winner = rule ?? priority;
      conflicts.push({
        field,
        base: baseValue ?? null,
        local: local[field] ?? null,
        remote: remote[field] ?? null,
        winner,
        rule: rule ? 'field_rule' : 'priority',
      });
      value = winner === 'local' ? local[field] : remote[field];
    } else if (localChanged) {
      value = local[field];
    } else {
      // Unchanged locally: whatever the remote has now stands, changed there or not.
      value = remote[field];
    }
    merged[field] = value;
    if (!equalValues(value, remote[field])) toSend[field] = value;
  }
  return { merged, toSend, conflicts };
}
