/**
 * The end of a soak, once the faults stop: wait until the outbox is drained and no export runs,
 * export again (`retryFailed`) the records that failed because the outage outlasted the retry
 * window, and wait again.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import type { Tidesync } from 'tidesync';

/** How long the pipeline may take to go quiet after the faults. */
const QUIET_TIMEOUT_MS = 5 * 60_000;
/** Quiet means quiet this many checks in a row, a second apart (a signal may start a run in between). */
const QUIET_CHECKS = 3;
/** How long the retried exports may take. */
const RETRY_TIMEOUT_MS = 3 * 60_000;

/** Where the pipeline stands. */
export interface Backlog {
  readonly pendingOutboxRows: number;
  readonly runningExports: number;
}

/** Pending outbox rows and running export workflows of `integration`. */
export async function backlog(tidesync: Pick<Tidesync, 'store' | 'temporal'>, integration: string): Promise<Backlog> {
  const row = await tidesync.store
    .selectFrom('outbox')
    .select(sql<string>`count(*)`.as('n'))
    .where('status', '=', 'pending')
    .executeTakeFirstOrThrow();
  const running = await tidesync.temporal.workflow.count(`TidesyncIntegration = '${integration}' AND ExecutionStatus = 'Running'`);
  return { pendingOutboxRows: Number(row.n), runningExports: running.count };
}

/** Waits until nothing is pending or running; resolves with whether it got there and how long it took. */
export async function waitUntilQuiet(
  tidesync: Pick<Tidesync, 'store' | 'temporal'>,
  integration: string,
  signal: AbortSignal,
  log: (line: string) => void,
): Promise<{ quiet: boolean; ms: number; last: Backlog | null }> {
  const began = Date.now();
  let quietChecks = 0;
  let last: Backlog | null = null;
  let reported = 0;
  while (Date.now() - began < QUIET_TIMEOUT_MS && !signal.aborted) {
    last = await backlog(tidesync, integration).catch(() => null);
    quietChecks = last && last.pendingOutboxRows === 0 && last.runningExports === 0 ? quietChecks + 1 : 0;
    if (quietChecks >= QUIET_CHECKS) return { quiet: true, ms: Date.now() - began, last };
    if (last && Date.now() - reported > 10_000) {
      reported = Date.now();
      log(`  waiting: ${last.pendingOutboxRows} outbox rows pending, ${last.runningExports} exports running`);
    }
    await sleep(1000);
  }
  return { quiet: false, ms: Date.now() - began, last };
}

/** What retrying the outage's failures did. */
export interface RetryOutcome {
  /** Records that failed because the retry window ran out. */
  readonly windowExhausted: number;
  readonly retried: number;
  readonly delivered: number;
  /** Refused by the remote this time (contacts of the invalid set that the outage failed first). */
  readonly refused: number;
  /** Still failing for another reason, or not finished in time. */
  readonly other: number;
}

/** `retryFailed` for the records whose retry window ran out (the outage's), waiting for every outcome. */
export async function retryOutageFailures(tidesync: Pick<Tidesync, 'client'>, integration: string): Promise<RetryOutcome> {
  const failures = await tidesync.client.listFailures({ integration, connector: 'contact' });
  const ids = failures.filter((f) => /retry window/.test(f.lastError ?? '')).map((f) => Number(f.key));
  if (ids.length === 0) return { windowExhausted: 0, retried: 0, delivered: 0, refused: 0, other: 0 };
  const scheduled = await tidesync.client.retryFailed({ integration, connector: 'contact', ids });
  const timeout = sleep(RETRY_TIMEOUT_MS, null, { ref: false });
  const outcomes = await Promise.all(scheduled.map((s) => Promise.race([tidesync.client.waitForExport(s), timeout]).catch(() => null)));
  const delivered = outcomes.filter((o) => o?.ok && o.counters.failed === 0).length;
  const refused = outcomes.filter((o) => o?.ok && o.failures.some((f) => / \(422\)/.test(f.message))).length;
  return { windowExhausted: ids.length, retried: scheduled.length, delivered, refused, other: scheduled.length - delivered - refused };
}
