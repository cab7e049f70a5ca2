/** Where an entity stands on the remote, read from its sync state. Pure code. */
import type { SyncState } from '../connectors/connector';

/**
 * Whether the remote holds the entity as last pushed (`snapshot`): true when `active`, and when
 * `failed` after having been pushed before, so that retrying a failed update updates the remote
 * record instead of creating a second one.
 */
export function isOnRemote(state: SyncState | null | undefined): state is SyncState & { remoteId: string } {
  if (!state?.remoteId) return false;
  return state.status === 'active' || (state.status === 'failed' && state.snapshotHash !== null);
}
