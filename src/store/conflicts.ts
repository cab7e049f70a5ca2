/** Records conflicts (fields changed on both sides) in `tidesync.conflict`. */
import type { Kysely, Selectable } from 'kysely';
import type { ConflictTable, TidesyncDatabase } from './schema';
import type { Conflict } from '../sync/merge';

/** Inserts one row per conflicting field, with the base, local and remote values and the decision. */
export async function recordConflicts(
  db: Kysely<TidesyncDatabase>,
  where: { integration: string; connector: string; key: string; workflowId: string | null; runId: string | null },
  conflicts: readonly Conflict[],
): Promise<void> {
  if (conflicts.length === 0) return;
  await db
    .insertInto('conflict')
    .values(
      conflicts.map((c) => ({
        integration: where.integration,
        connector: where.connector,
        entity_id: where.key,
        field: c.field,
        base_value: JSON.stringify(c.base ?? null),
        local_value: JSON.stringify(c.local ?? null),
        remote_value: JSON.stringify(c.remote ?? null),
        winner: c.winner,
        rule: c.rule,
        workflow_id: where.workflowId,
        run_id: where.runId,
      })),
    )
    .execute();
}

/** A recorded conflict. */
export type ConflictRecord = Selectable<ConflictTable>;

/** Recorded conflicts, newest first. */
export async function listConflicts(
  db: Kysely<TidesyncDatabase>,
  options: { limit?: number; integration?: string } = {},
): Promise<ConflictRecord[]> {
  let query = db
    .selectFrom('conflict')
    .selectAll()
    .orderBy('id', 'desc')
    .limit(options.limit ?? 50);
  if (options.integration) query = query.where('integration', '=', options.integration);
  return query.execute();
}
