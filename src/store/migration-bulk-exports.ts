/**
 * Migration `2026_12_10_001_bulk_exports`: a job execution may end `cancelled` (a bulk export
 * cancelled by `tidesync bulk cancel` records what it did before it stopped). Released
 * migrations are never edited: add a new one.
 */
import { type Kysely, type Migration, sql } from 'kysely';

/** The migration for tidesync's tables in `schema`. */
export function bulkExports(schema: string): Migration {
  const q = (name: string) => sql.id(schema, name);
  return {
    async up(root: Kysely<unknown>): Promise<void> {
      await sql`
        alter table ${q('job_execution')}
          drop constraint job_execution_status_check,
          add constraint job_execution_status_check
            check (status in ('running', 'completed', 'completed_with_failures', 'failed', 'cancelled'))`.execute(root);
    },
  };
}
