import { IdempotencyCache, type IdempotencyRecord } from './crm-idempotency';

/** A remembered single-contact response, or a batch answer with `results` results. */
function record(at: number, results?: number): IdempotencyRecord {
  const body = results === undefined ? { id: 'c_1' } : { results: Array.from({ length: results }, (_, i) => ({ key: `k${i}` })) };
  return { method: 'POST', path: '/contacts', response: { status: 200, body }, at };
}

describe('demo crm idempotency records', () => {
  it('should forget records older than the age limit', () => {
    let now = 1_000;
    const cache = new IdempotencyCache({ maxAgeMs: 100, maxWeight: 1_000 }, () => now);
    cache.set('old', record(now));
    now += 60;
    cache.set('new', record(now));
    now += 50;
    expect(cache.get('old')).toBeUndefined();
    expect(cache.get('new')).toMatchObject({ at: 1_060 });
    now += 100;
    expect(cache.entries()).toEqual([]);
  });

  it('should forget the oldest records once they hold more contacts than the limit, a batch weighing its results', () => {
    const cache = new IdempotencyCache({ maxAgeMs: 60_000, maxWeight: 10 }, () => 0);
    for (const key of ['a', 'b', 'c']) cache.set(key, record(0));
    cache.set('batch', record(0, 8));
    expect(cache.entries().map(([key]) => key)).toEqual(['b', 'c', 'batch']);
    expect(cache.weight).toBe(10);
    cache.set('d', record(0));
    expect(cache.entries().map(([key]) => key)).toEqual(['c', 'batch', 'd']);
    cache.set('big', record(0, 11));
    expect(cache.size).toBe(0);
    expect(cache.weight).toBe(0);
  });

  it('should count a key given again once, at its new place in the order', () => {
    const cache = new IdempotencyCache({ maxAgeMs: 60_000, maxWeight: 2 }, () => 0);
    cache.set('a', record(0));
    cache.set('b', record(0));
    cache.set('a', record(0, 1));
    expect(cache.entries().map(([key]) => key)).toEqual(['b', 'a']);
    expect(cache.weight).toBe(2);
    cache.set('c', record(0));
    expect(cache.entries().map(([key]) => key)).toEqual(['a', 'c']);
  });
});
