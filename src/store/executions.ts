/** Reads and writes job execution records (`tidesync.job_execution`). */
import { sql } from 'kysely';
import type { Kysely, Selectable } from 'kysely';
import type { JobExecutionTable, TidesyncDatabase } from './schema';
import type { FinishInput, RunRef } from '../activities/types';

/** Records a run as running; a retried call for the same run changes nothing. */
export async function beginExecutionRecord(
  db: Kysely<TidesyncDatabase>,
  run: RunRef & { workflowId: string; runId: string; iteration: number; entityKeys: readonly string[] },
): Promise<void> {
  await db
    .insertInto('job_execution')
    .values({
      workflow_id: run.workflowId,
      run_id: run.runId,
      iteration: run.iteration,
      job: run.job,
      integration: run.integration,
      connector: run.connector,
      entity_ids: JSON.stringify(run.entityKeys),
      status: 'running',
      warnings: '[]',
      failures: '[]',
      conflicts: '[]',
    })
    .onConflict((oc) => oc.columns(['run_id', 'iteration']).doNothing())
    .execute();
}

/** Records the outcome, counters, warnings and failures of a run. */
export async function finishExecutionRecord(
  db: Kysely<TidesyncDatabase>,
  input: FinishInput,
): Promise<{ integration: string; connector: string } | undefined> {
  return db
    .updateTable('job_execution')
    .set({
      status: input.status,
      read_count: input.counters.read,
      processed_count: input.counters.processed,
      written_count: input.counters.written,
      skipped_count: input.counters.skipped,
      failed_count: input.counters.failed,
      warnings: JSON.stringify(input.warnings),
      failures: JSON.stringify(input.failures),
      conflicts: JSON.stringify(input.conflicts),
      failed_step: input.failedStep,
      error: input.error,
      finished_at: new Date(),
    })
    .where('run_id', '=', input.runId)
    .where('iteration', '=', input.iteration)
    .returning(['integration', 'connector'])
    .executeTakeFirst();
}

/**
 * Records how far a bulk export got: its counters and failures so far, and when `finished` its
 * outcome and finish time (one record per bulk export, kept under its first run's id).
 */
export async function recordBulkExecution(
  db: Kysely<TidesyncDatabase>,
  input: Omit<FinishInput, 'iteration' | 'conflicts' | 'failedStep'> & { finished: boolean },
): Promise<{ integration: string; connector: string } | undefined> {
  return db
    .updateTable('job_execution')
    .set({
      status: input.status,
      read_count: input.counters.read,
      processed_count: input.counters.processed,
      written_count: input.counters.written,
      skipped_count: input.counters.skipped,
      failed_count: input.counters.failed,
      warnings: JSON.stringify(input.warnings),
      failures: JSON.stringify(input.failures),
      error: input.error,
      ...(input.finished ? { finished_at: new Date() } : {}),
    })
    .where('run_id', '=', input.runId)
    .where('iteration', '=', 1)
    .returning(['integration', 'connector'])
    .executeTakeFirst();
}

/** A job execution record. */
export type JobExecution = Selectable<JobExecutionTable>;

/** Which executions to list. */
export interface ExecutionQuery {
  readonly limit?: number;
  readonly workflowId?: string;
  readonly integration?: string;
  readonly connector?: string;
  /** Only the executions that exported this entity (its encoded id, e.g. `42` or `id=1;tenant=2`). */
  readonly entity?: string;
}

/** The most recent executions, newest first, optionally for one workflow id, integration, connector or entity. */
export async function listExecutions(db: Kysely<TidesyncDatabase>, options: ExecutionQuery = {}): Promise<JobExecution[]> {
  let query = db.selectFrom('job_execution').selectAll().orderBy('started_at', 'desc').orderBy('id', 'desc');
  if (options.workflowId) query = query.where('workflow_id', '=', options.workflowId);
  if (options.integration) query = query.where('integration', '=', options.integration);
  if (options.connector) query = query.where('connector', '=', options.connector);
  if (options.entity !== undefined) query = query.where(sql<boolean>`entity_ids @> ${JSON.stringify([options.entity])}::jsonb`);
  return query.limit(options.limit ?? 20).execute();
}
