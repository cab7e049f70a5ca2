/**
 * Migration `2026_12_21_001_sync_state_room`: `sync_state` keeps half of each page free
 * (`fillfactor = 50`). Its rows are inserted once and then updated on every sync: a create is
 * recorded as pending, then its answer saved, a row rewritten within milliseconds of its insert.
 * With full pages every such update moved the row to another page and added an entry to the
 * primary key's index (four WAL records a row); with room on the page it is a heap-only update
 * (HOT), the index untouched. Applies to pages written from now on. Released migrations are
 * never edited.
 */
import { type Kysely, type Migration, sql } from 'kysely';

/** Percent of a `sync_state` page filled by inserts; the rest takes the rows' updates. */
export const SYNC_STATE_FILLFACTOR = 50;

/** The migration for tidesync's tables in `schema`. */
export function syncStateRoom(schema: string): Migration {
  return {
    async up(root: Kysely<unknown>): Promise<void> {
      await sql`alter table ${sql.id(schema, 'sync_state')} set (fillfactor = ${sql.lit(SYNC_STATE_FILLFACTOR)})`.execute(root);
    },
  };
}
