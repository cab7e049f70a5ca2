/**
 * The shared state of the rate limiter, against the real PostgreSQL: request slots spaced 1 / rate
 * apart whoever asks, a 429 pausing and cutting the rate, concurrency slots held by a connection
 * and freed when that connection dies.
 */
import { sql } from 'kysely';
import pg from 'pg';
import type { Integration } from '../src/connectors/connector';
import { IntegrationThrottledError } from '../src/errors';
import { listRateLimits, loadIntegrationForWrite, pausedFor, recordThrottle, reserveRequest } from '../src/store/rate-limits';
import { RemoteLimiter } from '../src/store/remote-limiter';
import { REQUEST_SLOT_SPACE, RequestSlots } from '../src/store/request-slots';
import { upsertIntegration } from '../src/store/integrations';
import { type TestDatabase, createTestDatabase, uniqueName } from './helpers';

describe('the rate limiter state in PostgreSQL', () => {
  let database: TestDatabase;
  const slots: RequestSlots[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await Promise.all(slots.map((s) => s.close()));
    await database?.drop();
  });

  const integration = (rateLimit: Integration['rateLimit']) =>
    upsertIntegration(database.db, { name: uniqueName('rl'), type: 'demo', rateLimit });
  const newSlots = () => {
    const s = new RequestSlots(database.url, 8);
    slots.push(s);
    return s;
  };

  it('should space request slots 1 / rate apart, however many ask at once, and book at most the horizon', async () => {
    const { id } = await integration({ requestsPerSecond: 20, maxConcurrent: null });
    const clock = async () => (await sql<{ t: Date }>`select clock_timestamp() as t`.execute(database.app)).rows[0]?.t.getTime() as number;
    const before = await clock();
    const asked = await Promise.all(Array.from({ length: 30 }, () => reserveRequest(database.db, id, 1_000)));
    const after = await clock();
    const granted = asked.filter((r) => r.granted);
    // About 21 of the 30 (0, 50, ..., 1000 ms away, a little more as the clock moves on); none more than the horizon ahead.
    expect(granted.length).toBeGreaterThanOrEqual(20);
    expect(granted.length).toBeLessThan(30);
    expect(Math.max(...granted.map((r) => r.waitMs))).toBeLessThanOrEqual(1_000);
    expect(asked.every((r) => r.rate === 20)).toBe(true);
    // Each granted slot moved the next one on by exactly 50 ms, from the first slot (taken between before and after).
    const row = await database.db
      .selectFrom('integration_throttle')
      .select('next_at')
      .where('integration_id', '=', id)
      .executeTakeFirstOrThrow();
    const booked = row.next_at.getTime() - granted.length * 50;
    expect(booked).toBeGreaterThanOrEqual(before - 1);
    expect(booked).toBeLessThanOrEqual(after + 1);
    // The others were told how long until the first free slot, beyond the horizon, and booked nothing.
    for (const r of asked.filter((x) => !x.granted)) expect(r.waitMs).toBeGreaterThan(950 - (after - before));
  });

  it('should pause every caller after a 429, halve the rate once per burst, and climb back from the end of the pause', async () => {
    const { id, name } = await integration({ requestsPerSecond: 10, maxConcurrent: null });
    expect(await recordThrottle(database.db, id, 500)).toBeGreaterThan(400);
    expect(await recordThrottle(database.db, id, 300)).toBeGreaterThan(400); // a shorter Retry-After keeps the longer pause
    // Both asked at once, so their waits are on one clock whatever the machine's load: 5/s, 200 ms apart.
    const [first, second] = (await Promise.all([reserveRequest(database.db, id, 5_000), reserveRequest(database.db, id, 5_000)])).sort(
      (a, b) => a.waitMs - b.waitMs,
    );
    expect(first).toMatchObject({ granted: true, rate: 5 }); // halved once for the burst of two
    expect(first!.waitMs).toBeGreaterThan(300);
    expect(second!.waitMs - first!.waitMs).toBeGreaterThan(150);

    const [state] = await listRateLimits(database.db, { integration: name });
    expect(state).toMatchObject({ requestsPerSecond: 10, currentRate: 5, throttles: 2, lastRetryAfterMs: 300 });
    expect(state?.pausedUntil).toBeInstanceOf(Date);
    await new Promise((resolve) => setTimeout(resolve, 1_600));
    expect(await pausedFor(database.db, id)).toBe(0);
    // 5 % of the limit a second from the end of the pause: about 5.5/s one second later.
    const [later] = await listRateLimits(database.db, { integration: name });
    expect(later?.currentRate).toBeGreaterThan(5.2);
    expect(later?.currentRate).toBeLessThan(6);
    expect(later?.pausedUntil).toBeNull();
    // A 429 after the burst cuts again, from the current rate, never below a tenth of the limit.
    await recordThrottle(database.db, id, 0);
    const [cut] = await listRateLimits(database.db, { integration: name });
    expect(cut?.currentRate).toBeGreaterThan(2.5);
    expect(cut?.currentRate).toBeLessThan(3);
  });

  it('should give the pause with the integration row, and pause integrations without limits too', async () => {
    const { id, name } = await integration({ requestsPerSecond: null, maxConcurrent: null });
    expect((await loadIntegrationForWrite(database.db, name)).pausedMs).toBe(0);
    await recordThrottle(database.db, id, 2_000);
    const loaded = await loadIntegrationForWrite(database.db, name);
    expect(loaded.integration).toMatchObject({ id, name, rateLimit: { requestsPerSecond: null, maxConcurrent: null } });
    expect(loaded.pausedMs).toBeGreaterThan(1_500);
    const [state] = await listRateLimits(database.db, { integration: name });
    expect(state).toMatchObject({ requestsPerSecond: null, currentRate: null, throttles: 1 });
    await expect(loadIntegrationForWrite(database.db, 'nope')).rejects.toThrow("unknown integration 'nope'");
  });

  it('should hold a concurrency slot per connection, one lock per take, freed at release or when the connection dies', async () => {
    const { id } = await integration({ requestsPerSecond: null, maxConcurrent: 2 });
    const a = newSlots();
    const b = newSlots();
    const first = await a.tryTake(id, 2);
    const second = await b.tryTake(id, 2);
    expect(first && second && new Set([first.slot, second.slot]).size).toBe(2);
    expect(await a.tryTake(id, 2)).toBeNull();
    expect(await b.tryTake(id, 2)).toBeNull();
    const locks = await sql<{ n: string }>`
      select count(*) as n from pg_locks where locktype = 'advisory' and classid = ${REQUEST_SLOT_SPACE}::oid and granted`.execute(
      database.app,
    );
    expect(Number(locks.rows[0]?.n)).toBe(2);

    await first?.release();
    const again = await b.tryTake(id, 2);
    expect(again?.slot).toBe(first?.slot);
    // A worker that dies loses its connections: its slots come free without anyone releasing them.
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      await admin.query(
        `select pg_terminate_backend(pid) from pg_locks where locktype = 'advisory' and classid = $1::oid and granted and pid <> pg_backend_pid()`,
        [REQUEST_SLOT_SPACE],
      );
    } finally {
      await admin.end();
    }
    const c = newSlots();
    const taken = await Promise.all([c.tryTake(id, 2), c.tryTake(id, 2)]);
    expect(taken.every((t) => t !== null)).toBe(true);
    await Promise.all(taken.map((t) => t?.release()));
    // Releasing a slot whose connection died does not throw.
    await second?.release();
    await again?.release();
  });

  it('should refuse, without waiting, a call whose pause is longer than one activity waits', async () => {
    const limited = await integration({ requestsPerSecond: 5, maxConcurrent: 1 });
    const limiter = new RemoteLimiter(database.db, newSlots());
    await limiter.throttled(limited, 120_000);
    const began = Date.now();
    const refused = limiter.acquire(limited, { signal: new AbortController().signal });
    await expect(refused).rejects.toThrow(IntegrationThrottledError);
    await expect(refused).rejects.toThrow(/is paused for 2m after the remote answered 429/);
    expect(Date.now() - began).toBeLessThan(2_000);
  });
});
