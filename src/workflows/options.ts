/** Timeouts and retry policies of the export activities, named so they are easy to review. */
import type { ActivityOptions, LocalActivityOptions } from '@temporalio/workflow';
import { NON_RETRYABLE_ERROR_TYPES } from '../errors';

/** Failure types that retrying cannot fix (see `errors.ts`). */
const NON_RETRYABLE = [...NON_RETRYABLE_ERROR_TYPES];

/** Attempts of one write activity in runs that know the failure lifecycle (see below). */
export const WRITE_ATTEMPTS_PER_ACTIVITY = 3;

/** Retries of database work: quick, a few times, for a restarting database. */
const DATABASE_RETRY = {
  initialInterval: '500 milliseconds',
  backoffCoefficient: 2,
  maximumInterval: '10 seconds',
  maximumAttempts: 8,
  nonRetryableErrorTypes: NON_RETRYABLE,
} as const;

/** Database work: reading entities and sync state, planning changes. */
export const DATABASE_ACTIVITY_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { ...DATABASE_RETRY, nonRetryableErrorTypes: [...DATABASE_RETRY.nonRetryableErrorTypes] },
};

/**
 * Database steps of a pass run as local activities (runs patched with `local-pass`): retried in
 * the worker like `DATABASE_ACTIVITY_OPTIONS`.
 */
export const LOCAL_DATABASE_ACTIVITY_OPTIONS: LocalActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { ...DATABASE_RETRY, nonRetryableErrorTypes: [...DATABASE_RETRY.nonRetryableErrorTypes] },
};

/** Execution records (local activities): quick writes to our own database, retried in the worker. */
export const BOOKKEEPING_ACTIVITY_OPTIONS: LocalActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { ...DATABASE_RETRY, nonRetryableErrorTypes: [...DATABASE_RETRY.nonRetryableErrorTypes] },
};

/**
 * Remote writes of runs recorded before the failure lifecycle (kept so they replay and finish as
 * they began): transient failures (5xx, timeouts, connection errors) back off exponentially up
 * to a minute; a 429 comes back after the remote's Retry-After (the activity sets the next retry
 * delay); permanent rejections are not retried.
 */
export const WRITE_ACTIVITY_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 10,
    nonRetryableErrorTypes: NON_RETRYABLE,
  },
};

/**
 * Remote writes of runs that know the failure lifecycle: a blip (one 503, a reset connection, a
 * 429 with a short Retry-After) is retried here, within seconds and without a workflow timer;
 * anything longer is the workflow's to wait out on durable timers, asking the integration's
 * breaker first, until the integration's retry window ends. A degraded integration refuses the
 * write at once (`IntegrationDegradedError`) rather than letting each export retry on its own.
 */
export const WINDOWED_WRITE_ACTIVITY_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '10 seconds',
    maximumAttempts: WRITE_ATTEMPTS_PER_ACTIVITY,
    nonRetryableErrorTypes: [...NON_RETRYABLE, 'IntegrationDegradedError'],
  },
};

/**
 * The windowed write as a local activity (runs patched with `local-pass`): the same attempts and
 * backoff as `WINDOWED_WRITE_ACTIVITY_OPTIONS`, run in the worker inside the workflow task. A
 * local activity cannot heartbeat: a worker that dies mid-write is noticed when its workflow
 * task times out (seconds), and the write runs again on another worker, under the same
 * idempotency key.
 */
export const LOCAL_WRITE_ACTIVITY_OPTIONS: LocalActivityOptions = {
  startToCloseTimeout: '2 minutes',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '10 seconds',
    maximumAttempts: WRITE_ATTEMPTS_PER_ACTIVITY,
    nonRetryableErrorTypes: [...NON_RETRYABLE, 'IntegrationDegradedError'],
  },
};

/**
 * Passes one run makes before it continues as new. Each pass adds about 17 history events, so
 * this keeps a busy entity's history far below Temporal's limits.
 */
export const MAX_PASSES_PER_RUN = 25;

/**
 * After a pass, when more changes arrived meanwhile, wait until no change has arrived for this long
 * before the follow-up pass, so a burst of changes costs one follow-up write, not one per change.
 * The first pass of a run starts at once: a lone change is exported without delay.
 */
export const FOLLOW_UP_QUIET_PERIOD_MS = 500;

/** The longest a follow-up pass waits for a burst to end (a steady stream must still be exported). */
export const FOLLOW_UP_MAX_WAIT_MS = 10_000;

/**
 * Bulk export pages (one activity reads, processes and writes a page): a blip is retried here,
 * within seconds, as for the windowed writes above; longer failures are the workflow's to wait
 * out. A page heartbeats every second, so a worker that dies mid-page is noticed after 10 s and
 * the page runs again elsewhere (idempotently: see `activities/bulk-page.ts`). The heartbeat,
 * not this limit, is what notices a dead worker; the limit only ends a page that is stuck while
 * its worker lives. Thirty minutes leaves room for a page of `DEFAULT_BULK_PAGE_SIZE` rows held
 * to a slow rate limit: 2,500 records one request each at 2 per second take 21 minutes.
 */
export const BULK_PAGE_ACTIVITY_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '10 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '10 seconds',
    maximumAttempts: WRITE_ATTEMPTS_PER_ACTIVITY,
    nonRetryableErrorTypes: [...NON_RETRYABLE, 'IntegrationDegradedError'],
  },
};

/** A change stream's pass: one activity over a batch of entities, like a bulk export's page. */
export const STREAM_PASS_ACTIVITY_OPTIONS: ActivityOptions = BULK_PAGE_ACTIVITY_OPTIONS;

/**
 * Counting the rows of a bulk export and planning its pages: database reads over the identifier
 * index, quick even on large tables; a minute leaves room for a count of millions of rows.
 */
export const BULK_PLAN_ACTIVITY_OPTIONS: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry: { ...DATABASE_RETRY, nonRetryableErrorTypes: [...DATABASE_RETRY.nonRetryableErrorTypes] },
};

/**
 * `bulkBegin` as a local activity (bulk exports patched with `bulk-local-begin`): the same limits
 * as `BULK_PLAN_ACTIVITY_OPTIONS`, retried in the worker. A count longer than the workflow task's
 * timeout is fine: the worker keeps the task alive while a local activity runs.
 */
export const LOCAL_BULK_BEGIN_OPTIONS: LocalActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry: { ...DATABASE_RETRY, nonRetryableErrorTypes: [...DATABASE_RETRY.nonRetryableErrorTypes] },
};

/**
 * Rows per page of a bulk export unless the caller says otherwise: twenty-five batches of the demo
 * CRM's 100, written in five lock scopes of `BULK_LOCKED_ROWS`. Each page is one activity, and the
 * Temporal server's CPU per entity falls with the page: in the bulk benchmark at 100,000 contacts
 * (two runs each) 21-22 us at 500 rows, 12-13 at 1,000, 7-8 at 2,000, everything else unchanged
 * (166-188 us in all), 0.40-0.43, 0.43-0.46 and 0.44-0.45 of the direct loop. At 10,000 contacts
 * (two runs of three rounds each), one wave of four pages of 2,500 rows against sixteen of 625:
 * Temporal 9-13 against 20-21 us per entity, 156-219 against 201-234 us in all, 7,700-10,500
 * against 7,000-8,400 entities/s.
 */
export const DEFAULT_BULK_PAGE_SIZE = 2_500;

/** The smallest page `fitPageSize` makes. */
export const MIN_FITTED_BULK_PAGE_SIZE = 500;

/**
 * The page size of an export of `total` rows that `parallelism` pages go through at once, when the
 * caller gave none: pages of one size in whole waves of `parallelism` pages, as few waves as pages
 * of at most `largest` rows allow, so no page runs alone at the end (10,000 rows at 2,000 a page
 * were 5 pages with 4 in flight, the fifth alone); at least `MIN_FITTED_BULK_PAGE_SIZE` rows (or
 * `largest`, if that is less). 10,000 rows with 4 in flight: 4 pages of 2,500; 12,000: 8 of 1,500.
 */
export function fitPageSize(total: number, parallelism: number, largest: number): number {
  const waves = Math.max(1, Math.ceil(total / (parallelism * largest)));
  const fitting = Math.ceil(total / (parallelism * waves));
  return Math.min(largest, Math.max(MIN_FITTED_BULK_PAGE_SIZE, fitting));
}

/** Pages of one bulk export in flight at once unless the caller says otherwise. */
export const DEFAULT_BULK_PARALLELISM = 4;

/** Page planning looks this many times `parallelism` pages ahead, so it runs rarely. */
export const BULK_PLAN_AHEAD = 4;

/**
 * Pages one bulk export run starts before it continues as new. Without failures a page costs at
 * most 6 history events (its activity's scheduled, started and completed, and one workflow task's
 * three) and each planning call as much again for `BULK_PLAN_AHEAD * parallelism` pages, so a run
 * stays under `bulkHistoryBound(500)` = 3,800 events, far below Temporal's 10,240-event
 * suggestion to continue as new (which the run honours too, when retries make it longer).
 */
export const BULK_PAGES_PER_RUN = 500;

/** The most history events a bulk export run of `pages` pages writes when no page has to be retried. */
export function bulkHistoryBound(pages: number): number {
  // Pages and plans, plus the start, the first run's begin, status changes, pause/resume/cancel
  // updates and the closing record: 100 covers them.
  return 7 * pages + 100;
}
