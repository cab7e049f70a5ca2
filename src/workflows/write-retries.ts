/**
 * The failure lifecycle of one step's write (see `retry-window.ts`): transient failures and an
 * open breaker are waited out on durable timers until the integration's retry window ends; then
 * the step's changes are marked `failed` and the run completes with them as recorded failures.
 */
import { proxyActivities, proxyLocalActivities, upsertSearchAttributes } from '@temporalio/workflow';
// Only import the activity types: workflow code must stay free of I/O.
import type { ExportActivities } from '../activities';
import type { PlannedChange, StepInput, WriteStepOutput } from '../activities/types';
import type { RetrySettings } from '../retry-policy';
import { STATUS_ATTRIBUTE } from '../search-attributes';
import {
  DATABASE_ACTIVITY_OPTIONS,
  LOCAL_DATABASE_ACTIVITY_OPTIONS,
  LOCAL_WRITE_ACTIVITY_OPTIONS,
  WINDOWED_WRITE_ACTIVITY_OPTIONS,
} from './options';
import { gaveUpReason, retryWithinWindow } from './retry-window';

/** The marker of runs that know the failure lifecycle (`patched()`); older histories replay without it. */
export const FAILURE_LIFECYCLE_PATCH = 'failure-lifecycle';

const writes = proxyActivities<ExportActivities>(WINDOWED_WRITE_ACTIVITY_OPTIONS);
const dbActivities = proxyActivities<ExportActivities>(DATABASE_ACTIVITY_OPTIONS);
const localWrites = proxyLocalActivities<ExportActivities>(LOCAL_WRITE_ACTIVITY_OPTIONS);
const localDbActivities = proxyLocalActivities<ExportActivities>(LOCAL_DATABASE_ACTIVITY_OPTIONS);

/** What `writeWithRetries` needs. */
export interface WriteWithRetries {
  readonly step: StepInput;
  readonly changes: readonly PlannedChange[];
  readonly retry: RetrySettings;
  /** Prefix of the run's current details, e.g. `pass 1, **Push contact**`. */
  readonly label: string;
  /** Write (and mark failed) with local activities: runs patched with `LOCAL_PASS_PATCH`. */
  readonly local?: boolean;
}

/**
 * Writes the changes, waiting out transient failures and an open breaker for up to the retry
 * window; returns what was written, or the records marked `failed` when the window ran out.
 * Permanent and configuration errors are thrown, as before: the step fails.
 */
export async function writeWithRetries(w: WriteWithRetries): Promise<WriteStepOutput> {
  const windowEnds = Date.now() + w.retry.retryWindowMs;
  return retryWithinWindow({
    attempt: (gate) => (w.local ? localWrites : writes).writeStep({ ...w.step, changes: w.changes, gate }),
    giveUp: (last) => giveUp(w, last),
    integration: w.step.integration,
    integrationId: w.step.integrationId,
    retry: w.retry,
    windowEndsAt: () => windowEnds,
    onRetrying: () => upsertSearchAttributes([{ key: STATUS_ATTRIBUTE, value: 'retrying' }]),
    label: w.label,
  });
}

/** The window ran out: keep the changes as `failed`, with the reason and the attempts. */
async function giveUp(w: WriteWithRetries, last: { attempts: number; lastError: string | null }): Promise<WriteStepOutput> {
  const error = gaveUpReason(w.retry, last);
  const failures = await (w.local ? localDbActivities : dbActivities).markFailed({
    ...w.step,
    changes: w.changes.map((c) => ({ key: c.key, hash: c.hash })),
    error,
    attempts: last.attempts,
  });
  const marked = new Set(failures.map((f) => f.key));
  // A change whose write went through after all (its answer was lost) is in the sync state: not failed.
  const skipped = w.changes.filter((c) => !marked.has(c.key)).map((c) => ({ key: c.key, reason: 'written by an earlier attempt' }));
  return { written: [], skipped, failures, conflicts: [], warnings: [] };
}
