/**
 * The shared state of each integration's rate limiter (`tidesync.integration_throttle`), one row
 * per integration, changed only by single atomic statements so every worker process agrees:
 *
 * - **Request slots, no burst.** `next_at` is the next free slot. A request takes the slot
 *   (`greatest(next_at, now, paused_until)`) and moves `next_at` one interval (1 / rate) past it,
 *   then waits until its slot: requests start at least 1 / rate apart across all workers. A slot
 *   more than `aheadMs` away is not taken, so a long queue does not book the future.
 * - **A 429 pauses the integration.** `paused_until` is the remote's Retry-After: no slot is
 *   given before it, to any worker.
 * - **And cuts its rate (AIMD).** The first 429 of a burst halves the current rate (never below
 *   `RATE_FLOOR` of the limit); from the end of the pause the rate climbs back by
 *   `RECOVERY_PER_SECOND` of the limit each second.
 *
 * Times are the database's (`clock_timestamp()`, read after the row lock is taken), so skewed
 * worker clocks do not matter and a slot is never computed from a time before its wait for the row.
 */
import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { Integration } from '../connectors/connector';
import { getIntegration, toIntegration } from './integrations';
import { prepared } from './prepared';
import type { TidesyncDatabase } from './schema';

/** After a 429 the rate is halved; this is the fraction of the limit it never goes below. */
export const RATE_FLOOR = 0.1;

/** How fast a cut rate climbs back: this fraction of the limit per second (from half to full in 10 s). */
export const RECOVERY_PER_SECOND = 0.05;

/** 429s closer than this to the last cut are the same burst: one cut, not one per request in flight. */
export const CUT_QUIET_MS = 1_000;

/** The longest pause a Retry-After may ask for; a longer one is cut to this (the next 429 pauses again). */
export const MAX_PAUSE_MS = 60 * 60 * 1000;

const ms = (value: number): RawBuilder<unknown> => sql`(${sql.lit(Math.round(value))} * interval '1 millisecond')`;

/** Milliseconds from now (the database's clock) to `t`, never negative; 0 for null. */
const msUntil = (t: RawBuilder<unknown>): RawBuilder<number> =>
  sql<number>`coalesce(greatest(0, extract(epoch from (${t} - clock_timestamp())) * 1000), 0)::float8`;

/**
 * The integration's rate now, requests per second: its limit, or the cut rate climbing back to it.
 * `t` is the throttle row, `limit` the integration's `rate_limit_rps`; null when it has no limit.
 */
function currentRate(t: string, limit: RawBuilder<unknown>): RawBuilder<number | null> {
  const row = (column: string) => sql.ref(`${t}.${column}`);
  return sql<number | null>`least(${limit}, coalesce(${row('reduced_rps')} + ${limit} * ${sql.lit(RECOVERY_PER_SECOND)}
    * greatest(0, extract(epoch from (clock_timestamp() - ${row('recover_from')}))), ${limit}))`;
}

/** What asking for a request slot answered. */
export interface Reservation {
  /** True: the slot is this caller's (start after `waitMs`); false: the queue is longer than `aheadMs`, ask again later. */
  readonly granted: boolean;
  /** How long until the slot (or, not granted, until the first free one); 0: go now. */
  readonly waitMs: number;
  /** The rate the slot was spaced at (requests per second); null: no rate limit, only the pause counts. */
  readonly rate: number | null;
}

/**
 * Takes the integration's next request slot when it is at most `aheadMs` away (see the module
 * comment). One statement; the row is created on first use.
 */
export async function reserveRequest(db: Kysely<TidesyncDatabase>, integrationId: number, aheadMs: number): Promise<Reservation> {
  for (;;) {
    const limit = sql.ref('integration.rate_limit_rps');
    const interval = sql`coalesce(1000.0 / ${currentRate('x', limit)}, 0)`;
    const start = sql`greatest(x.next_at, clock_timestamp(), x.paused_until)`;
    const row = await db
      .updateTable('integration_throttle as x')
      // The row as it was, locked first (so concurrent callers queue on it and each sees the last one's slot).
      .from((eb) =>
        eb
          .selectFrom('integration_throttle')
          .select(['integration_id', 'next_at', 'paused_until'])
          .where('integration_id', '=', integrationId)
          .forUpdate()
          .as('y'),
      )
      .innerJoin('integration', 'integration.id', 'y.integration_id')
      .whereRef('x.integration_id', '=', 'y.integration_id')
      .set({
        next_at: sql`case when ${start} <= clock_timestamp() + ${ms(aheadMs)}
          then ${start} + ${interval} * interval '1 millisecond' else x.next_at end`,
        updated_at: sql`clock_timestamp()`,
      })
      .returning([
        sql<number>`greatest(${msUntil(sql`y.next_at`)}, ${msUntil(sql`y.paused_until`)})`.as('wait_ms'),
        sql<boolean>`(x.next_at > y.next_at or integration.rate_limit_rps is null)`.as('granted'),
        sql<number | null>`${currentRate('x', limit)}::float8`.as('rate'),
      ])
      .executeTakeFirst();
    if (row) return { granted: row.granted, waitMs: row.wait_ms, rate: row.rate };
    await db
      .insertInto('integration_throttle')
      .values({ integration_id: integrationId })
      .onConflict((oc) => oc.doNothing())
      .execute();
  }
}

/** How long the integration stays paused after a 429 (ms, the database's clock); 0 when it is not. */
export async function pausedFor(db: Kysely<TidesyncDatabase>, integrationId: number): Promise<number> {
  const row = await db
    .selectFrom('integration_throttle')
    .select(msUntil(sql`paused_until`).as('ms'))
    .where('integration_id', '=', integrationId)
    .executeTakeFirst();
  return row?.ms ?? 0;
}

/**
 * Records a 429: pauses the integration for `retryAfterMs` (a pause already longer is kept) and,
 * when it has a rate limit and this is the first 429 of a burst, halves its rate. Returns how long
 * the integration is paused now.
 */
export async function recordThrottle(db: Kysely<TidesyncDatabase>, integrationId: number, retryAfterMs: number): Promise<number> {
  const pause = Math.min(Math.max(0, retryAfterMs), MAX_PAUSE_MS);
  const limit = sql`(${db.selectFrom('integration').select('rate_limit_rps').where('id', '=', integrationId)})`;
  const until = sql<Date>`clock_timestamp() + ${ms(pause)}`;
  const cut = sql<boolean>`(${limit} is not null and (integration_throttle.cut_at is null or integration_throttle.cut_at < clock_timestamp() - ${ms(CUT_QUIET_MS)}))`;
  const row = await db
    .insertInto('integration_throttle')
    .values({
      integration_id: integrationId,
      paused_until: until,
      reduced_rps: sql`${limit} * 0.5`,
      recover_from: until,
      cut_at: sql`case when ${limit} is not null then clock_timestamp() end`,
      throttles: 1,
      last_throttled_at: sql`clock_timestamp()`,
      last_retry_after_ms: pause,
    })
    .onConflict((oc) =>
      oc.column('integration_id').doUpdateSet({
        paused_until: sql`greatest(integration_throttle.paused_until, ${until})`,
        reduced_rps: sql`case when ${cut} then greatest(${limit} * ${sql.lit(RATE_FLOOR)}, ${currentRate('integration_throttle', limit)} * 0.5) else integration_throttle.reduced_rps end`,
        recover_from: sql`greatest(integration_throttle.recover_from, ${until})`,
        cut_at: sql`case when ${cut} then clock_timestamp() else integration_throttle.cut_at end`,
        throttles: sql`integration_throttle.throttles + 1`,
        last_throttled_at: sql`clock_timestamp()`,
        last_retry_after_ms: pause,
        updated_at: sql`clock_timestamp()`,
      }),
    )
    .returning(msUntil(sql`integration_throttle.paused_until`).as('paused_ms'))
    .executeTakeFirstOrThrow();
  return row.paused_ms;
}

/**
 * The integration called `name` and how long it is paused after a 429 (ms), in the one query a
 * write session makes anyway: so an integration without limits learns of a pause at no cost.
 */
export async function loadIntegrationForWrite(
  db: Kysely<TidesyncDatabase>,
  name: string,
): Promise<{ integration: Integration; pausedMs: number }> {
  const [row] = (await selectForWrite(db, name)).rows;
  if (!row) return { integration: await getIntegration(db, name), pausedMs: 0 };
  const { paused_ms: pausedMs, ...integration } = row;
  return { integration: toIntegration(integration), pausedMs };
}

// Once per page of a bulk export: compiled once (see `prepared.ts`).
const selectForWrite = prepared(1, (db: Kysely<TidesyncDatabase>, name: string) =>
  db
    .selectFrom('integration')
    .leftJoin('integration_throttle', 'integration_throttle.integration_id', 'integration.id')
    .selectAll('integration')
    .select(msUntil(sql`integration_throttle.paused_until`).as('paused_ms'))
    .where('integration.name', '=', name),
);

/** An integration's limits and its limiter's state, as `tidesync status` and `integration list` show them. */
export interface RateLimitState {
  readonly integration: string;
  /** The declared limit (requests per second); null: unlimited. */
  readonly requestsPerSecond: number | null;
  readonly maxConcurrent: number | null;
  /** The rate requests are spaced at now: the limit, or less while it climbs back after a 429. */
  readonly currentRate: number | null;
  /** While paused after a 429: until when (the database's clock). */
  readonly pausedUntil: Date | null;
  /** 429s the remote answered, ever. */
  readonly throttles: number;
  readonly lastThrottledAt: Date | null;
  /** The last Retry-After, in milliseconds. */
  readonly lastRetryAfterMs: number | null;
}

/** The limits and limiter state of every integration (or one), by name. */
export async function listRateLimits(db: Kysely<TidesyncDatabase>, options: { integration?: string } = {}): Promise<RateLimitState[]> {
  let query = db
    .selectFrom('integration')
    .leftJoin('integration_throttle as t', 't.integration_id', 'integration.id')
    .select([
      'integration.name',
      'integration.rate_limit_rps',
      'integration.max_concurrent',
      sql<number | null>`${currentRate('t', sql.ref('integration.rate_limit_rps'))}::float8`.as('current_rate'),
      sql<Date | null>`case when t.paused_until > clock_timestamp() then t.paused_until end`.as('paused_until'),
      't.throttles',
      't.last_throttled_at',
      't.last_retry_after_ms',
    ])
    .orderBy('integration.name');
  if (options.integration !== undefined) query = query.where('integration.name', '=', options.integration);
  const rows = await query.execute();
  return rows.map((r) => ({
    integration: r.name,
    requestsPerSecond: r.rate_limit_rps,
    maxConcurrent: r.max_concurrent,
    currentRate: r.current_rate,
    pausedUntil: r.paused_until,
    throttles: r.throttles ?? 0,
    lastThrottledAt: r.last_throttled_at,
    lastRetryAfterMs: r.last_retry_after_ms === null ? null : Number(r.last_retry_after_ms),
  }));
}
