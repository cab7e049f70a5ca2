/**
 * The circuit breaker of each integration (`tidesync.integration_health`). Write activities record
 * every remote write's outcome with one atomic statement; N failed calls in a row trip the breaker
 * (`degraded`); while degraded, exports ask `claimWrite` and wait on durable timers, and exactly
 * one of them per probe interval wins the conditional `UPDATE ... WHERE probe_at <= now()` and
 * probes. A successful write closes the breaker. Times are the database's (`now()`), so workers
 * with skewed clocks agree.
 */
import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { Integration } from '../connectors/connector';
import { BREAKER_FAILURE_GAP_MS } from '../retry-policy';
import { prepared } from './prepared';
import type { BreakerState, TidesyncDatabase } from './schema';

/** What the breaker says to a write that wants to go ahead. */
export type WriteVerdict =
  | { readonly allowed: true; readonly probe: boolean }
  | {
      readonly allowed: false;
      /** How long until the next probe may start. */
      readonly retryInMs: number;
      /** The failure that keeps the integration degraded. */
      readonly lastError: string | null;
    };

/** The settings of an integration the breaker needs. */
export type BreakerSettings = Pick<Integration, 'id' | 'breakerThreshold' | 'probeIntervalMs'>;

const ms = (value: number): RawBuilder<unknown> => sql`(${sql.lit(Math.round(value))} * interval '1 millisecond')`;

/**
 * Records a failed remote call (5xx, timeout, connection error, 429) and returns the breaker's state
 * after it: one more in the streak (a new streak when the last failure is older than
 * `BREAKER_FAILURE_GAP_MS`), `degraded` once the streak reaches the threshold, and then the first
 * probe one interval later.
 */
export async function recordRemoteFailure(db: Kysely<TidesyncDatabase>, settings: BreakerSettings, error: string): Promise<BreakerState> {
  const threshold = sql.lit(settings.breakerThreshold);
  const streak = sql<number>`(case when integration_health.last_failure_at > now() - ${ms(BREAKER_FAILURE_GAP_MS)}
    then integration_health.consecutive_failures + 1 else 1 end)`;
  const wasDegraded = sql<boolean>`(integration_health.state = 'degraded')`;
  const trips = sql<boolean>`(not ${wasDegraded} and ${streak} >= ${threshold})`;
  const tripsAlone = settings.breakerThreshold <= 1;
  const row = await db
    .insertInto('integration_health')
    .values({
      integration_id: settings.id,
      state: tripsAlone ? 'degraded' : 'healthy',
      consecutive_failures: 1,
      last_failure_at: sql`now()`,
      last_error: error,
      degraded_at: tripsAlone ? sql`now()` : null,
      probe_at: tripsAlone ? sql`now() + ${ms(settings.probeIntervalMs)}` : null,
    })
    .onConflict((oc) =>
      oc.column('integration_id').doUpdateSet({
        consecutive_failures: streak,
        state: sql`case when ${wasDegraded} or ${trips} then 'degraded' else 'healthy' end`,
        degraded_at: sql`case when ${trips} then now() else integration_health.degraded_at end`,
        probe_at: sql`case when ${trips} then now() + ${ms(settings.probeIntervalMs)} else integration_health.probe_at end`,
        probes: sql`case when ${trips} then 0 else integration_health.probes end`,
        last_failure_at: sql`now()`,
        last_error: error,
        updated_at: sql`now()`,
      }),
    )
    .returning('state')
    .executeTakeFirstOrThrow();
  return row.state;
}

/**
 * Records that the remote took a write (or answered it with a 4xx or 412: it is up): the streak
 * ends and a degraded breaker closes, so waiting exports go ahead at their next check. Writes
 * nothing when there was no streak.
 *
 * Reports of one integration in one process share their statements: while one runs, the reports
 * that arrive wait for one more run after it, which starts after each of them and so records
 * every one (a bulk page reports after each batch, several pages at once: one statement for each
 * report was 5 a lock scope per page in flight).
 */
export async function recordRemoteSuccess(db: Kysely<TidesyncDatabase>, integrationId: number): Promise<void> {
  let byIntegration = successReports.get(db);
  if (!byIntegration) successReports.set(db, (byIntegration = new Map()));
  const running = byIntegration.get(integrationId);
  if (running) {
    running.again = true;
    return running.done;
  }
  const report: SuccessReport = { again: false, done: Promise.resolve() };
  byIntegration.set(integrationId, report);
  const reports = byIntegration;
  report.done = (async () => {
    try {
      do {
        report.again = false;
        await closeStreak(db, integrationId);
      } while (report.again);
    } finally {
      reports.delete(integrationId);
    }
  })();
  return report.done;
}

/** A success report's statements in flight: `again` when a report arrived during the current one. */
interface SuccessReport {
  again: boolean;
  done: Promise<void>;
}

const successReports = new WeakMap<Kysely<TidesyncDatabase>, Map<number, SuccessReport>>();

// Run after every batch a bulk page sends: compiled once (see `prepared.ts`).
const closeStreak = prepared(1, (db: Kysely<TidesyncDatabase>, integrationId: number) =>
  db
    .updateTable('integration_health')
    .set({
      state: 'healthy',
      consecutive_failures: 0,
      probe_at: null,
      recovered_at: sql`case when state = 'degraded' then now() else recovered_at end`,
      updated_at: sql`now()`,
    })
    .where('integration_id', '=', integrationId)
    .where((eb) => eb.or([eb('state', '=', 'degraded'), eb('consecutive_failures', '>', 0)])),
);

/**
 * The write activity's gate: a healthy integration lets every write through; a degraded one only
 * the probe that `claimWrite` granted, and tells the others how long to wait.
 */
export async function checkWrite(db: Kysely<TidesyncDatabase>, integrationId: number, probe: boolean): Promise<WriteVerdict> {
  const row = await db
    .selectFrom('integration_health')
    .select([
      'state',
      'last_error',
      sql<number>`greatest(0, ceil(extract(epoch from (coalesce(probe_at, now()) - now())) * 1000))::integer`.as('retry_in_ms'),
    ])
    .where('integration_id', '=', integrationId)
    .executeTakeFirst();
  if (!row || row.state === 'healthy') return { allowed: true, probe: false };
  if (probe) return { allowed: true, probe: true };
  return { allowed: false, retryInMs: row.retry_in_ms, lastError: row.last_error };
}

/**
 * "May I write?": yes when healthy; when degraded, yes for exactly one caller per probe interval
 * (the conditional update moves `probe_at` one interval on, so a second caller finds it in the
 * future), and no with the wait for everyone else.
 */
export async function claimWrite(db: Kysely<TidesyncDatabase>, integrationId: number): Promise<WriteVerdict> {
  const claimed = await db
    .updateTable('integration_health')
    .set((eb) => ({
      // The integration's current setting, read in the same statement.
      probe_at: sql`now() + ${eb
        .selectFrom('integration')
        .select('probe_interval_ms')
        .where('integration.id', '=', integrationId)} * interval '1 millisecond'`,
      probes: eb('probes', '+', 1),
      last_probe_at: sql`now()`,
      updated_at: sql`now()`,
    }))
    .where('integration_id', '=', integrationId)
    .where('state', '=', 'degraded')
    .where((eb) => eb.or([eb('probe_at', 'is', null), eb('probe_at', '<=', sql<Date>`now()`)]))
    .returning('integration_id')
    .executeTakeFirst();
  if (claimed) return { allowed: true, probe: true };
  return checkWrite(db, integrationId, false);
}

/** An integration's breaker, as `tidesync status` and `client.integrationHealth` report it. */
export interface IntegrationHealth {
  readonly integration: string;
  readonly state: BreakerState;
  /** Failed remote calls in a row. */
  readonly consecutiveFailures: number;
  readonly lastFailureAt: Date | null;
  readonly lastError: string | null;
  /** When the breaker last tripped. */
  readonly degradedAt: Date | null;
  /** While degraded: when the next probe may start. */
  readonly nextProbeAt: Date | null;
  /** Probes since the breaker last tripped. */
  readonly probes: number;
  readonly lastProbeAt: Date | null;
  /** When a probe last found the remote back. */
  readonly recoveredAt: Date | null;
}

/** The breaker of every integration (or one), by name; integrations that never failed are healthy. */
export async function listIntegrationHealth(
  db: Kysely<TidesyncDatabase>,
  options: { integration?: string } = {},
): Promise<IntegrationHealth[]> {
  let query = db
    .selectFrom('integration')
    .leftJoin('integration_health', 'integration_health.integration_id', 'integration.id')
    .select([
      'integration.name',
      'integration_health.state',
      'integration_health.consecutive_failures',
      'integration_health.last_failure_at',
      'integration_health.last_error',
      'integration_health.degraded_at',
      'integration_health.probe_at',
      'integration_health.probes',
      'integration_health.last_probe_at',
      'integration_health.recovered_at',
    ])
    .orderBy('integration.name');
  if (options.integration !== undefined) query = query.where('integration.name', '=', options.integration);
  const rows = await query.execute();
  return rows.map((r) => ({
    integration: r.name,
    state: r.state ?? 'healthy',
    consecutiveFailures: r.consecutive_failures ?? 0,
    lastFailureAt: r.last_failure_at,
    lastError: r.last_error,
    degradedAt: r.degraded_at,
    nextProbeAt: r.state === 'degraded' ? r.probe_at : null,
    probes: r.probes ?? 0,
    lastProbeAt: r.last_probe_at,
    recoveredAt: r.recovered_at,
  }));
}
