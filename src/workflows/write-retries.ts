/**
 * The failure lifecycle of one step's write, in workflow code. A write that fails transiently is
 * tried again after durable timers (the probe interval, doubling, capped so a window costs at most
 * a few hundred checks) until the integration's retry window ends; then its records are marked
 * `failed` and the run completes with them as recorded failures. While the integration's breaker
 * is open (`degraded`) the export does not write at all: it sleeps, asks `mayWrite` (a local
 * activity), and writes only when the breaker is closed again or it won the one probe of the
 * interval.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  TimeoutFailure,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  sleep,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import { RetryState } from '@temporalio/common';
// Only import the activity types: workflow code must stay free of I/O.
import type { ExportActivities } from '../activities';
import type { PlannedChange, StepInput, WriteStepOutput } from '../activities/types';
import { NON_RETRYABLE_ERROR_TYPES } from '../errors';
import { type RetrySettings, formatDuration, retryWaitMs } from '../retry-policy';
import { STATUS_ATTRIBUTE } from '../search-attributes';
import {
  BOOKKEEPING_ACTIVITY_OPTIONS,
  DATABASE_ACTIVITY_OPTIONS,
  WINDOWED_WRITE_ACTIVITY_OPTIONS,
  WRITE_ATTEMPTS_PER_ACTIVITY,
} from './options';

/** The marker of runs that know the failure lifecycle (`patched()`); older histories replay without it. */
export const FAILURE_LIFECYCLE_PATCH = 'failure-lifecycle';

const writes = proxyActivities<ExportActivities>(WINDOWED_WRITE_ACTIVITY_OPTIONS);
const dbActivities = proxyActivities<ExportActivities>(DATABASE_ACTIVITY_OPTIONS);
// "May I write?" is one cheap query: a local activity, recorded as a single marker event.
const breaker = proxyLocalActivities<ExportActivities>(BOOKKEEPING_ACTIVITY_OPTIONS);

/** What `writeWithRetries` needs. */
export interface WriteWithRetries {
  readonly step: StepInput;
  readonly changes: readonly PlannedChange[];
  readonly retry: RetrySettings;
  /** Prefix of the run's current details, e.g. `pass 1, **Push contact**`. */
  readonly label: string;
}

/** A failed write attempt, as the workflow sees it; null when the step must fail instead. */
interface FailedWrite {
  readonly degraded: boolean;
  readonly message: string;
  /** Attempts of this activity that reached the remote. */
  readonly attempts: number;
  /** Degraded: how long until the next probe may start. */
  readonly retryInMs: number;
}

/**
 * Writes the changes, waiting out transient failures and an open breaker for up to the retry
 * window; returns what was written, or the records marked `failed` when the window ran out.
 * Permanent and configuration errors are thrown, as before: the step fails.
 */
export async function writeWithRetries(w: WriteWithRetries): Promise<WriteStepOutput> {
  const windowEnds = Date.now() + w.retry.retryWindowMs;
  let probe = false;
  let attempts = 0;
  let failedWrites = 0;
  let lastError: string | null = null;
  let retrying = false;
  for (;;) {
    let wait: number;
    let degraded: boolean;
    try {
      return await writes.writeStep({ ...w.step, changes: w.changes, gate: { probe } });
    } catch (err) {
      const failure = failedWrite(err);
      if (!failure) throw err;
      attempts += failure.attempts;
      degraded = failure.degraded;
      if (!degraded) {
        lastError = failure.message;
        failedWrites += 1;
      }
      wait = retryWaitMs(w.retry, degraded ? 1 : failedWrites, failure.retryInMs, Math.random());
    }
    if (!retrying) {
      retrying = true;
      upsertSearchAttributes([{ key: STATUS_ATTRIBUTE, value: 'retrying' }]);
    }
    // Sleep, then ask the breaker, until it lets us write again or the window is over.
    probe = false;
    let refusals = 0;
    let degradedBy: string | null = null;
    for (;;) {
      const left = windowEnds - Date.now();
      if (left <= 0) return giveUp(w, { attempts, lastError: lastError ?? degradedBy });
      setCurrentDetails(
        `${w.label}: ${degraded ? 'integration degraded, waiting for the remote to recover' : `attempt ${attempts} failed: ${lastError ?? ''}`}; ` +
          `next check in ${formatDuration(Math.min(wait, left))}, gives up in ${formatDuration(left)}`,
      );
      await sleep(Math.min(wait, left));
      const verdict = await breaker.mayWrite({ integration: w.step.integration, integrationId: w.step.integrationId });
      if (verdict.allowed) {
        probe = verdict.probe;
        break;
      }
      degraded = true;
      degradedBy = verdict.lastError;
      refusals += 1;
      wait = retryWaitMs(w.retry, refusals, verdict.retryInMs, Math.random());
    }
  }
}

/** The window ran out: keep the changes as `failed` records, with the reason and the attempts. */
async function giveUp(w: WriteWithRetries, last: { attempts: number; lastError: string | null }): Promise<WriteStepOutput> {
  const window = formatDuration(w.retry.retryWindowMs);
  const error =
    last.attempts > 0
      ? `gave up after ${last.attempts} attempts in the ${window} retry window: ${last.lastError ?? 'unknown error'}`
      : `not written: the integration stayed degraded for the whole ${window} retry window (${last.lastError ?? 'unknown error'})`;
  const failures = await dbActivities.markFailed({
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

/** Reads a failed write activity: transient, refused by the breaker, or for the step to fail (null). */
function failedWrite(err: unknown): FailedWrite | null {
  if (!(err instanceof ActivityFailure)) return null;
  const cause = err.cause;
  const exhausted = err.retryState === RetryState.MAXIMUM_ATTEMPTS_REACHED ? WRITE_ATTEMPTS_PER_ACTIVITY : 1;
  if (cause instanceof TimeoutFailure) {
    return { degraded: false, message: `the write timed out (${String(cause.timeoutType)})`, attempts: exhausted, retryInMs: 0 };
  }
  if (!(cause instanceof ApplicationFailure)) return null;
  const details = (cause.details?.[0] ?? {}) as { attempt?: number; retryInMs?: number };
  if (cause.type === 'IntegrationDegradedError') {
    return { degraded: true, message: cause.message, attempts: Math.max((details.attempt ?? 1) - 1, 0), retryInMs: details.retryInMs ?? 0 };
  }
  if (cause.nonRetryable || NON_RETRYABLE_ERROR_TYPES.includes(cause.type ?? '')) return null;
  return { degraded: false, message: cause.message, attempts: details.attempt ?? exhausted, retryInMs: 0 };
}
