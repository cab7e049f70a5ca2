/**
 * The export workflow. Its workflow type is the export job's name (`demo_contact_export`), so
 * it is registered as the default (dynamic) workflow and reads its job from `workflowInfo()`.
 * For each step it runs read -> process -> write as activities, then records the outcome.
 */
import {
  ApplicationFailure,
  ActivityFailure,
  proxyActivities,
  setCurrentDetails,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
// Only import the activity types: workflow code must stay free of I/O.
import type { ExportActivities } from '../activities';
import type { ExecutionCounters, RecordFailure } from '../activities/types';
import type { ExecutionStatus } from '../db/schema';
import { type EntityId, encodeEntityId } from '../entity-id';
import { STATUS_ATTRIBUTE } from '../search-attributes';
import { DATABASE_ACTIVITY_OPTIONS, WRITE_ACTIVITY_OPTIONS } from './options';

/** Input of an export run. Holds names and ids only: never a secret. */
export interface ExportInput {
  readonly integration: string;
  readonly connector: string;
  readonly ids: readonly EntityId[];
}

/** What an export run returns (also kept in its execution record). */
export interface ExportResult {
  readonly status: ExecutionStatus;
  readonly counters: ExecutionCounters;
  readonly warnings: readonly string[];
  readonly failures: readonly RecordFailure[];
  readonly written: ReadonlyArray<{ key: string; remoteId: string; operation: 'create' | 'update' }>;
}

const dbActivities = proxyActivities<ExportActivities>(DATABASE_ACTIVITY_OPTIONS);
const writeActivities = proxyActivities<ExportActivities>(WRITE_ACTIVITY_OPTIONS);

/** Runs the export job named by this workflow's type for the given entities. */
export async function exportJob(input: ExportInput): Promise<ExportResult> {
  const info = workflowInfo();
  const run = { job: info.workflowType, integration: input.integration, connector: input.connector };
  const entityKeys = input.ids.map((id) => encodeEntityId(id));
  const counters: ExecutionCounters = { read: 0, processed: 0, written: 0, skipped: 0, failed: 0 };
  const warnings: string[] = [];
  const failures: RecordFailure[] = [];
  const written: Array<{ key: string; remoteId: string; operation: 'create' | 'update' }> = [];
  let failedStep: string | null = null;
  let error: string | null = null;

  upsertSearchAttributes([{ key: STATUS_ATTRIBUTE, value: 'running' }]);
  const plan = await dbActivities.beginExecution({ ...run, workflowId: info.workflowId, runId: info.runId, entityKeys });

  for (const step of plan.steps) {
    const stepInput = { ...run, integrationId: plan.integrationId, step: step.name };
    try {
      setCurrentDetails(`**${step.title}**: reading ${input.ids.length} entities`);
      const read = await dbActivities.readStep({ ...stepInput, ids: input.ids });
      counters.read += read.items.length;
      counters.skipped += read.missing.length;
      for (const key of read.missing) warnings.push(`${step.name}: entity ${key} not found`);

      setCurrentDetails(`**${step.title}**: processing ${read.items.length} entities`);
      const processed = await dbActivities.processStep({ ...stepInput, items: read.items });
      counters.processed += read.items.length - processed.failures.length;
      counters.skipped += processed.skipped.length;
      for (const s of processed.skipped) warnings.push(`${step.name}: entity ${s.key} skipped: ${s.reason}`);
      failures.push(...processed.failures);

      setCurrentDetails(`**${step.title}**: writing ${processed.changes.length} changes`);
      const result = await writeActivities.writeStep({ ...stepInput, changes: processed.changes });
      counters.written += result.written.length;
      written.push(...result.written);
      failures.push(...result.failures);
    } catch (err) {
      // A failed step stops the job; the record says which step and why.
      failedStep = step.name;
      error = describe(err);
      break;
    }
  }
  counters.failed = failures.length;

  const status: ExecutionStatus = failedStep ? 'failed' : failures.length > 0 ? 'completed_with_failures' : 'completed';
  await dbActivities.finishExecution({ runId: info.runId, status, counters, warnings, failures, failedStep, error });
  upsertSearchAttributes([{ key: STATUS_ATTRIBUTE, value: status }]);
  setCurrentDetails(`**${status}**: written ${counters.written}, skipped ${counters.skipped}, failed ${counters.failed}`);

  if (failedStep) {
    throw ApplicationFailure.create({
      message: `step '${failedStep}' failed: ${error}`,
      type: 'ExportStepFailed',
      nonRetryable: true,
    });
  }
  return { status, counters, warnings, failures, written };
}

/** The innermost message of an activity failure: what actually went wrong. */
function describe(err: unknown): string {
  let current: unknown = err;
  while (current instanceof ActivityFailure && current.cause) current = current.cause;
  return current instanceof Error ? current.message : String(current);
}
