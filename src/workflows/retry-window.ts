/**
 * The failure lifecycle of a write, in workflow code, for any writing activity (a per-entity
 * step's write, a bulk export's page). A write that fails transiently is tried again after
 * durable timers (the probe interval, doubling, capped so a window costs at most a few hundred
 * checks) until the integration's retry window ends; then the caller's `giveUp` keeps its records
 * as `failed`. While the integration's breaker is open (`degraded`) nothing is written: the
 * workflow sleeps, asks `mayWrite` (a local activity), and writes only when the breaker is closed
 * again or it won the one probe of the interval.
 */
import { ActivityFailure, ApplicationFailure, TimeoutFailure, proxyLocalActivities, setCurrentDetails, sleep } from '@temporalio/workflow';
import { RetryState } from '@temporalio/common';
// Only import the activity types: workflow code must stay free of I/O.
import type { ExportActivities } from '../activities';
import { NON_RETRYABLE_ERROR_TYPES } from '../errors';
import { type RetrySettings, formatDuration, retryWaitMs } from '../retry-policy';
import { BOOKKEEPING_ACTIVITY_OPTIONS, WRITE_ATTEMPTS_PER_ACTIVITY } from './options';

// "May I write?" is one cheap query: a local activity, recorded as a single marker event.
const breaker = proxyLocalActivities<ExportActivities>(BOOKKEEPING_ACTIVITY_OPTIONS);

/** What `retryWithinWindow` needs. */
export interface WindowedWrite<T> {
  /** One try of the writing activity; `gate.probe`: `mayWrite` granted this try the probe. */
  attempt(gate: { probe: boolean }): Promise<T>;
  /** The window ran out: keep the records as `failed` with this reason, and return the outcome. */
  giveUp(last: { attempts: number; lastError: string | null }): Promise<T>;
  readonly integration: string;
  readonly integrationId: number;
  readonly retry: RetrySettings;
  /** When the window ends (workflow time, ms); asked at each check. */
  windowEndsAt(): number;
  /** Called once, at the first failure (the per-entity export marks its run `retrying`). */
  onRetrying(): void;
  /** Called at every failed attempt. */
  onFailure?(): void;
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
 * Writes, waiting out transient failures and an open breaker until the window ends; then gives
 * up. Permanent and configuration errors are thrown.
 */
export async function retryWithinWindow<T>(w: WindowedWrite<T>): Promise<T> {
  let probe = false;
  let attempts = 0;
  let failedWrites = 0;
  let lastError: string | null = null;
  let retrying = false;
  for (;;) {
    let wait: number;
    let degraded: boolean;
    try {
      return await w.attempt({ probe });
    } catch (err) {
      const failure = failedWrite(err);
      if (!failure) throw err;
      w.onFailure?.();
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
      w.onRetrying();
    }
    // Sleep, then ask the breaker, until it lets us write again or the window is over.
    probe = false;
    let refusals = 0;
    let degradedBy: string | null = null;
    for (;;) {
      const left = w.windowEndsAt() - Date.now();
      if (left <= 0) return w.giveUp({ attempts, lastError: lastError ?? degradedBy });
      setCurrentDetails(
        `${w.label}: ${degraded ? 'integration degraded, waiting for the remote to recover' : `attempt ${attempts} failed: ${lastError ?? ''}`}; ` +
          `next check in ${formatDuration(Math.min(wait, left))}, gives up in ${formatDuration(left)}`,
      );
      await sleep(Math.min(wait, left));
      const verdict = await breaker.mayWrite({ integration: w.integration, integrationId: w.integrationId });
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

/** The reason a window ran out, for the records kept as `failed`. */
export function gaveUpReason(retry: RetrySettings, last: { attempts: number; lastError: string | null }): string {
  const window = formatDuration(retry.retryWindowMs);
  return last.attempts > 0
    ? `gave up after ${last.attempts} attempts in the ${window} retry window: ${last.lastError ?? 'unknown error'}`
    : `not written: the integration stayed degraded for the whole ${window} retry window (${last.lastError ?? 'unknown error'})`;
}

/** Reads a failed write activity: transient, refused by the breaker, or for the step to fail (null). */
function failedWrite(err: unknown): FailedWrite | null {
  // An activity fails with an ActivityFailure around the cause; a local activity (runs patched with
  // `local-pass`) with the cause itself, once its attempts are used up or it is not retryable.
  const local = err instanceof ApplicationFailure || err instanceof TimeoutFailure;
  if (!(err instanceof ActivityFailure) && !local) return null;
  const cause = err instanceof ActivityFailure ? err.cause : err;
  const exhausted = local || err.retryState === RetryState.MAXIMUM_ATTEMPTS_REACHED ? WRITE_ATTEMPTS_PER_ACTIVITY : 1;
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
