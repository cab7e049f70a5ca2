/**
 * The export workflow. Its workflow type is the export job's name (`demo_contact_export`), so
 * it is registered as the default (dynamic) workflow and reads its job from `workflowInfo()`.
 * A pass runs each step's read -> process -> write activities and records the outcome; changes
 * signalled during a pass make it run one more pass, so a burst of changes to one entity costs at
 * most one write in flight plus one follow-up, and the remote ends with the latest state.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  continueAsNew,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
// Only import the activity types: workflow code must stay free of I/O.
import type { ExportActivities } from '../activities';
import type { ExecutionCounters, RecordedConflict, RecordFailure, WrittenRecord } from '../activities/types';
import type { ExecutionStatus } from '../store/schema';
import { type EntityId, encodeEntityId } from '../entity-id';
import { STATUS_ATTRIBUTE } from '../search-attributes';
import {
  BOOKKEEPING_ACTIVITY_OPTIONS,
  DATABASE_ACTIVITY_OPTIONS,
  FOLLOW_UP_MAX_WAIT_MS,
  FOLLOW_UP_QUIET_PERIOD_MS,
  LOCAL_DATABASE_ACTIVITY_OPTIONS,
  MAX_PASSES_PER_RUN,
  WRITE_ACTIVITY_OPTIONS,
} from './options';
import { changedSignal } from './signals';
import { DEFAULT_RETRY_SETTINGS } from '../retry-policy';
import { FAILURE_LIFECYCLE_PATCH, writeWithRetries } from './write-retries';

/** Input of an export run. Holds names and ids only: never a secret. */
export interface ExportInput {
  readonly integration: string;
  readonly connector: string;
  readonly ids: readonly EntityId[];
  /** Passes before the run continues as new; default `MAX_PASSES_PER_RUN`. */
  readonly maxPassesPerRun?: number;
}

/** What an export run returns (each pass is also kept in its execution record). */
export interface ExportResult {
  readonly status: ExecutionStatus;
  /** How many passes this run made (more than one when changes arrived meanwhile). */
  readonly passes: number;
  readonly counters: ExecutionCounters;
  readonly warnings: readonly string[];
  readonly failures: readonly RecordFailure[];
  /** Fields changed on both sides, and which side won. */
  readonly conflicts: readonly RecordedConflict[];
  readonly written: readonly WrittenRecord[];
}

const dbActivities = proxyActivities<ExportActivities>(DATABASE_ACTIVITY_OPTIONS);
// Runs patched with LOCAL_PASS_PATCH read, process and write back as local activities: they run in
// the worker inside the workflow task, one marker event each, with no task round trip per step.
const localDbActivities = proxyLocalActivities<ExportActivities>(LOCAL_DATABASE_ACTIVITY_OPTIONS);
// Execution records are bookkeeping in our own database: local activities (run in the worker,
// recorded as one marker event each) spare the server a task round trip per pass.
const bookkeeping = proxyLocalActivities<ExportActivities>(BOOKKEEPING_ACTIVITY_OPTIONS);
const writeActivities = proxyActivities<ExportActivities>(WRITE_ACTIVITY_OPTIONS);

/**
 * The marker of runs whose passes run as local activities (read, process, write, write back):
 * a pass is then one workflow task and about a dozen history events instead of 28, and no
 * activity waits for a task queue. Runs recorded before it replay with their activities.
 */
export const LOCAL_PASS_PATCH = 'local-pass';

/** Runs the export job named by this workflow's type for the given entities. */
export async function exportJob(input: ExportInput): Promise<ExportResult> {
  const local = patched(LOCAL_PASS_PATCH);
  let changed = false;
  let signals = 0;
  setHandler(changedSignal, () => {
    changed = true;
    signals += 1;
  });

  const counters: ExecutionCounters = { read: 0, processed: 0, written: 0, skipped: 0, failed: 0 };
  const warnings: string[] = [];
  const failures: RecordFailure[] = [];
  const conflicts: RecordedConflict[] = [];
  const written: WrittenRecord[] = [];
  let status: ExecutionStatus = 'completed';
  let passes = 0;
  const coverChanges = () => {
    // Called just before a pass reads the entity: changes signalled so far are in what it reads.
    changed = false;
  };
  do {
    if (passes > 0) {
      // A follow-up: let the burst that caused it end first (no new change for a quiet period).
      const deadline = Date.now() + FOLLOW_UP_MAX_WAIT_MS;
      let seen: number;
      do {
        seen = signals;
      } while ((await condition(() => signals !== seen, FOLLOW_UP_QUIET_PERIOD_MS)) && Date.now() < deadline);
    }
    passes += 1;
    const pass = await runPass(input, passes, coverChanges, { local, job: workflowInfo().workflowType, status: true });
    for (const key of Object.keys(counters) as Array<keyof ExecutionCounters>) counters[key] += pass.counters[key];
    warnings.push(...pass.warnings);
    failures.push(...pass.failures);
    conflicts.push(...pass.conflicts);
    written.push(...pass.written);
    if (pass.status !== 'completed') status = pass.status;
    if (pass.status === 'failed') {
      throw ApplicationFailure.create({ message: pass.error ?? 'export failed', type: 'ExportStepFailed', nonRetryable: true });
    }
  } while (changed && passes < (input.maxPassesPerRun ?? MAX_PASSES_PER_RUN) && !workflowInfo().continueAsNewSuggested);

  if (changed) {
    // Keep the history small: a new run starts with a fresh history and exports the latest state.
    await continueAsNew<typeof exportJob>(input);
  }
  return { status, passes, counters, warnings, failures, conflicts, written };
}

/** What one pass did. */
export interface PassResult {
  status: ExecutionStatus;
  error: string | null;
  counters: ExecutionCounters;
  warnings: string[];
  failures: RecordFailure[];
  conflicts: RecordedConflict[];
  written: WrittenRecord[];
}

/** How a pass runs. */
export interface PassOptions {
  /** Local activities (runs patched with `LOCAL_PASS_PATCH`, and every change stream). */
  readonly local: boolean;
  /** The export job. */
  readonly job: string;
  /** Keep the run's `TidesyncStatus` search attribute up to date (one entity per run). */
  readonly status: boolean;
}

/** One pass: every step in order, recorded as one job execution. */
export async function runPass(
  input: Pick<ExportInput, 'integration' | 'connector' | 'ids'>,
  iteration: number,
  beforeFirstRead: () => void,
  options: PassOptions,
): Promise<PassResult> {
  const info = workflowInfo();
  const { local } = options;
  const steps = local ? localDbActivities : dbActivities;
  const run = { job: options.job, integration: input.integration, connector: input.connector };
  const counters: ExecutionCounters = { read: 0, processed: 0, written: 0, skipped: 0, failed: 0 };
  const warnings: string[] = [];
  const failures: RecordFailure[] = [];
  const conflicts: RecordedConflict[] = [];
  const written: WrittenRecord[] = [];
  let failedStep: string | null = null;
  let error: string | null = null;

  // A local pass's first one needs no 'running': the run was started as 'scheduled' a moment ago,
  // and each upsert costs the server a visibility write.
  if (options.status && (!local || iteration > 1)) upsertSearchAttributes([{ key: STATUS_ATTRIBUTE, value: 'running' }]);
  const entityKeys = input.ids.map((id) => encodeEntityId(id));
  const plan = await bookkeeping.beginExecution({ ...run, workflowId: info.workflowId, runId: info.runId, iteration, entityKeys });

  for (const step of plan.steps) {
    const stepInput = { ...run, integrationId: plan.integrationId, step: step.name };
    try {
      setCurrentDetails(`pass ${iteration}, **${step.title}**: reading ${input.ids.length} entities`);
      if (step === plan.steps[0]) beforeFirstRead();
      const read = await steps.readStep({ ...stepInput, ids: input.ids });
      counters.read += read.items.length;

      setCurrentDetails(`pass ${iteration}, **${step.title}**: processing ${read.items.length} entities`);
      const processed = await steps.processStep({ ...stepInput, items: read.items, missing: read.missing });
      counters.processed += read.items.length - processed.failures.length;
      counters.skipped += processed.skipped.length + processed.notFound.length;
      for (const key of processed.notFound) warnings.push(`${step.name}: entity ${key} not found`);
      for (const s of processed.skipped) warnings.push(`${step.name}: entity ${s.key} skipped: ${s.reason}`);
      failures.push(...processed.failures);

      // Nothing to write (all skipped or missing): no remote activity at all.
      if (processed.changes.length === 0) continue;
      setCurrentDetails(`pass ${iteration}, **${step.title}**: writing ${processed.changes.length} changes`);
      // Runs recorded before the failure lifecycle wrote with one retried activity and failed the
      // step when it gave up; they replay (and finish) that way.
      const result = patched(FAILURE_LIFECYCLE_PATCH)
        ? await writeWithRetries({
            step: stepInput,
            changes: processed.changes,
            retry: plan.retry ?? DEFAULT_RETRY_SETTINGS,
            label: `pass ${iteration}, **${step.title}**`,
            local,
          })
        : await writeActivities.writeStep({ ...stepInput, changes: processed.changes });
      for (const w of result.written) {
        if (w.operation === 'tombstone') {
          counters.skipped += 1;
          warnings.push(`${step.name}: entity ${w.key} was deleted locally; recorded a tombstone (the writer cannot delete)`);
        } else {
          counters.written += 1;
          if (w.operation === 'delete') warnings.push(`${step.name}: entity ${w.key} was deleted locally; deleted it on the remote`);
        }
      }
      counters.skipped += result.skipped.length;
      for (const s of result.skipped) warnings.push(`${step.name}: entity ${s.key} skipped: ${s.reason}`);
      for (const w of result.warnings) warnings.push(`${step.name}: ${w}`);
      for (const c of result.conflicts) {
        warnings.push(
          `${step.name}: entity ${c.key} conflict on '${c.field}': ${c.winner} wins (${c.rule === 'field_rule' ? 'field rule' : 'sync priority'})`,
        );
      }
      conflicts.push(...result.conflicts);
      written.push(...result.written);
      failures.push(...result.failures);

      const created = result.written.flatMap((w) => (w.operation === 'create' && w.remoteId ? [{ key: w.key, remoteId: w.remoteId }] : []));
      if (step.writeBack && created.length > 0) {
        setCurrentDetails(`pass ${iteration}, **${step.title}**: writing ${created.length} remote ids back`);
        await steps.writeBackStep({ ...stepInput, records: created });
      }
    } catch (err) {
      // A failed step stops the job; the record says which step and why.
      failedStep = step.name;
      error = `step '${step.name}' failed: ${describe(err)}`;
      break;
    }
  }
  counters.failed = failures.length;

  const status: ExecutionStatus = failedStep ? 'failed' : failures.length > 0 ? 'completed_with_failures' : 'completed';
  await bookkeeping.finishExecution({ runId: info.runId, iteration, status, counters, warnings, failures, conflicts, failedStep, error });
  if (options.status) upsertSearchAttributes([{ key: STATUS_ATTRIBUTE, value: status }]);
  setCurrentDetails(`pass ${iteration} **${status}**: written ${counters.written}, skipped ${counters.skipped}, failed ${counters.failed}`);
  return { status, error, counters, warnings, failures, conflicts, written };
}

/** The innermost message of an activity failure: what actually went wrong. */
function describe(err: unknown): string {
  let current: unknown = err;
  while (current instanceof ActivityFailure && current.cause) current = current.cause;
  return current instanceof Error ? current.message : String(current);
}
