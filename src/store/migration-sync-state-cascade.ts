/**
 * Migration `2026_12_22_001_sync_state_cascade`: `sync_state` loses its foreign key to
 * `integration`; a statement trigger on `integration` deletes the sync states of deleted
 * integrations instead, so deleting one still takes its sync states with it.
 *
 * Why: the foreign key checked every inserted sync-state row on its own (a query per row that
 * locks the integration's row `for key share`, and with several pages of one integration in flight
 * those locks are shared by several transactions, which PostgreSQL keeps as a multixact it extends
 * on every new locker). A bulk scope inserts 500 rows at once, all of one integration: measured in
 * isolation (500 pending creates then their answers, 4 connections at once, 80 scopes), 23-26 ms
 * and 19 ms per statement with the key, 17 and 12-13 ms without. Only tidesync writes sync states,
 * always for an integration it has just read. Released migrations are never edited.
 */
import { type Kysely, type Migration, sql } from 'kysely';

/** The trigger on `integration` that deletes the sync states of the integrations a statement deleted. */
export const SYNC_STATE_CASCADE_TRIGGER = 'integration_deletes_sync_state';

/** The migration for tidesync's tables in `schema`. */
export function syncStateCascade(schema: string): Migration {
  const q = (name: string) => sql.id(schema, name);
  return {
    async up(root: Kysely<unknown>): Promise<void> {
      const { rows } = await sql<{ name: string }>`
        select conname as name from pg_constraint
        where conrelid = (quote_ident(${schema}) || '.sync_state')::regclass and contype = 'f'
          and confrelid = (quote_ident(${schema}) || '.integration')::regclass`.execute(root);
      for (const { name } of rows) await sql`alter table ${q('sync_state')} drop constraint ${sql.id(name)}`.execute(root);
      await sql`
        create function ${q('delete_sync_states_of_integrations')}() returns trigger language plpgsql as $fn$
        begin
          delete from ${q('sync_state')} s using deleted d where s.integration_id = d.id;
          return null;
        end
        $fn$`.execute(root);
      await sql`
        create trigger ${sql.id(SYNC_STATE_CASCADE_TRIGGER)} after delete on ${q('integration')}
        referencing old table as deleted for each statement
        execute function ${q('delete_sync_states_of_integrations')}()`.execute(root);
    },
  };
}
