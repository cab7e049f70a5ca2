/**
 * Whether an entity and its sync state, read again under the entity's lock, are what a bulk page
 * read before taking the lock. When both are, planning again would give the same change (a
 * processor maps an entity and its state, nothing else), so the page keeps the change it planned:
 * planning is most of what a page costs besides its round trips, and it ran twice per row.
 */
import type { Entity, SyncState } from '../connectors/connector';

/** True when two rows of the reader hold the same columns with the same values. */
export function sameRow(a: Entity, b: Entity): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((key) => key in b && sameValue(a[key], b[key]));
}

/** True when two sync states (or their absence) are the same row of `sync_state`. */
export function sameState(a: SyncState | undefined, b: SyncState | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  // Every write of a sync state changes one of these; the snapshot goes with its hash.
  return (
    a.status === b.status &&
    a.remoteId === b.remoteId &&
    a.remoteVersion === b.remoteVersion &&
    a.snapshotHash === b.snapshotHash &&
    a.lastError === b.lastError &&
    a.attempts === b.attempts &&
    sameValue(a.lastSyncedAt, b.lastSyncedAt) &&
    sameValue(a.failedAt, b.failedAt) &&
    sameValue(a.pendingCreate, b.pendingCreate)
  );
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  // json columns, arrays: the pg driver builds them from text, so equal values stringify alike.
  return JSON.stringify(a) === JSON.stringify(b);
}
