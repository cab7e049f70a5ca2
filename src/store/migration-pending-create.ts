/**
 * Migration `2026_12_03_001_pending_create`: `sync_state.pending_create`, the create a write is
 * about to send (its idempotency key, the snapshot's hash and the data), recorded before the
 * request and cleared once its answer is saved. Released migrations are never edited.
 */
import { type Kysely, type Migration, sql } from 'kysely';

/** The migration for tidesync's tables in `schema`. */
export function pendingCreate(schema: string): Migration {
  return {
    async up(root: Kysely<unknown>): Promise<void> {
      // Set while a create's outcome is unknown: the remote may hold the record although no answer
      // (no remote id) came back. The entity's next write sends that very create again first.
      await sql`alter table ${sql.id(schema, 'sync_state')} add column pending_create jsonb`.execute(root);
    },
  };
}
