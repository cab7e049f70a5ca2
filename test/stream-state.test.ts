import { StreamState } from '../src/workflows/stream-state';

/** The coalescing rules of a change stream, on their own (the stream workflow applies them). */
describe('change stream coalescing rules', () => {
  const timing = { quietMs: 500, maxWaitMs: 10_000 };

  it('should start a lone change at once and never put an entity in two passes', () => {
    const state = new StreamState(timing);
    state.changed('1', 1, 0);
    state.changed('2', 2, 0);
    expect(state.take(0, 10).map((c) => c.key)).toEqual(['1', '2']);
    // A change of an entity in flight waits for its pass to end, then for a quiet spell.
    state.changed('1', 1, 10);
    expect(state.take(20, 10)).toEqual([]);
    state.done(['1', '2'], 50);
    expect(state.take(60, 10)).toEqual([]);
    expect(state.nextReadyInMs(60)).toBe(450);
    expect(state.take(510, 10).map((c) => c.key)).toEqual(['1']);
  });

  it('should fold a burst into one follow-up after the quiet period, at most the longest wait', () => {
    const state = new StreamState(timing);
    state.changed('7', 7, 0);
    expect(state.take(0, 10)).toHaveLength(1);
    state.done(['7'], 40);
    // Changes every 100 ms for 3 s: none may start while the burst goes on.
    for (let t = 100; t <= 3000; t += 100) {
      state.changed('7', 7, t);
      expect(state.take(t, 10)).toEqual([]);
    }
    expect(state.take(3499, 10)).toEqual([]);
    expect(state.take(3500, 10).map((c) => c.key)).toEqual(['7']);
    // An endless stream still gets written after the longest wait.
    state.done(['7'], 3550);
    for (let t = 3600; t < 13_600; t += 100) state.changed('7', 7, t);
    expect(state.take(13_599, 10)).toEqual([]);
    expect(state.take(13_600, 10)).toHaveLength(1);
  });

  it('should treat a change long after the last pass as a lone one', () => {
    const state = new StreamState(timing);
    state.changed('3', 3, 0);
    state.take(0, 10);
    state.done(['3'], 30);
    state.changed('3', 3, 600);
    expect(state.take(600, 10)).toHaveLength(1);
  });

  it('should take the oldest first, no more than asked or than fits, and carry the rest over', () => {
    const state = new StreamState(timing);
    for (let i = 1; i <= 5; i += 1) state.changed(String(i), i, 10 - i);
    const taken = state.take(20, 2);
    expect(taken.map((c) => c.key)).toEqual(['5', '4']);
    expect(state.take(20, 10, (key) => key !== '2').map((c) => c.key)).toEqual(['3']);
    state.done(['5'], 25);
    const carried = state.snapshot(30);
    expect(carried.pending.map((c) => c.key).sort()).toEqual(['1', '2']);
    expect(carried.recent).toEqual([['5', 25]]);
    // The next run keeps the burst rule for an entity written a moment ago.
    const next = new StreamState(timing, carried.pending, carried.recent);
    next.changed('5', 5, 40);
    expect(next.take(40, 10).map((c) => c.key)).toEqual(['2', '1']);
    expect(next.nextReadyInMs(40)).toBe(500);
  });
});
