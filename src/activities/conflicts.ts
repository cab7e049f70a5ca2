/** Records conflicts (fields changed on both sides) in `tidesync_conflict`. */
import type { Kysely } from 'kysely';
import type { TidesyncDatabase } from '../db/schema';
import type { Conflict } from '../sync/merge';

/** Inserts one row per conflicting field, with the base, local and remote values and the decision. */
export async function recordConflicts(
  db: Kysely<TidesyncDatabase>,
  where: { integration: string; connector: string; key: string; workflowId: string | null; runId: string | null },
  conflicts: readonly Conflict[],
): Promise<void> {
  if (conflicts.length === 0) return;
  await db
    .insertInto('tidesync_conflict')
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
