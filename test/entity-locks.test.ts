import { Client } from 'pg';
import { ENTITY_LOCK_SPACE, EntityLocks, entityLockKey } from '../src/store/entity-locks';
import { createTestDatabase } from './helpers';

describe('entity locks', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let locks: EntityLocks;
  let other: Client;

  beforeAll(async () => {
    database = await createTestDatabase();
    locks = new EntityLocks(database.url, 2);
    other = new Client({ connectionString: database.url });
    await other.connect();
  });
  afterAll(async () => {
    await other?.end();
    await locks?.close();
    await database?.drop();
  });

  const scope = { integrationId: 7, connector: 'contact' };
  /** Whether another session can take the entity's lock now (and gives it back at once). */
  const free = async (key: string) => {
    const lockKey = entityLockKey(scope, key);
    const { rows } = await other.query<{ taken: boolean }>('select pg_try_advisory_lock($1::int4, $2::int4) as taken', [
      ENTITY_LOCK_SPACE,
      lockKey,
    ]);
    if (rows[0]?.taken) await other.query('select pg_advisory_unlock($1::int4, $2::int4)', [ENTITY_LOCK_SPACE, lockKey]);
    return rows[0]?.taken === true;
  };

  it('should hold every key of the scope while the function runs, and none after', async () => {
    const keys = Array.from({ length: 500 }, (_, i) => String(i + 1));
    const seen = await locks.withLocks(scope, keys, async () => Promise.all(['1', '250', '500'].map(free)));
    expect(seen).toEqual([false, false, false]);
    expect(await free('250')).toBe(true);
    expect(await free('501')).toBe(true);
  });

  it('should make a second scope with a shared key wait until the first ends', async () => {
    const order: string[] = [];
    let release: () => void = () => undefined;
    const first = locks.withLocks(scope, ['a', 'b'], async () => {
      order.push('first in');
      await new Promise<void>((resolve) => (release = resolve));
      order.push('first out');
    });
    while (order.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    const second = locks.withLocks(scope, ['b', 'c'], async () => void order.push('second in'));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(order).toEqual(['first in']);
    release();
    await Promise.all([first, second]);
    expect(order).toEqual(['first in', 'first out', 'second in']);
  });
});
