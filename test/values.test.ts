import fc from 'fast-check';
import { mergeRecord } from '../src/sync/merge';
import { canonicalDecimal, changedFields, equalValues } from '../src/sync/values';

/** JSON-like values as an application or a remote API would produce them. */
const scalar = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -1e9, max: 1e9 }),
  fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e9, max: 1e9 }),
  fc.string(),
  fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }),
);
const value = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 4 }),
  object: fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), tie('value'), { maxKeys: 4 }),
})).value;

/** The same value, encoded differently but meaning the same thing. */
function reencode(v: unknown, rnd: () => number): unknown {
  if (v === null) return rnd() < 0.5 ? undefined : null;
  if (v instanceof Date) {
    // The same instant written with a random whole-hour zone offset.
    const offsetHours = Math.floor(rnd() * 27) - 12;
    const shifted = new Date(v.getTime() + offsetHours * 3_600_000).toISOString().slice(0, 23);
    const sign = offsetHours < 0 ? '-' : '+';
    const hh = String(Math.abs(offsetHours)).padStart(2, '0');
    return rnd() < 0.3 ? v.toISOString() : `${shifted}${sign}${hh}:00`;
  }
  if (typeof v === 'number') {
    if (Object.is(v, -0)) return 0;
    const text = String(v);
    // Trailing zeros keep a decimal's meaning (not after an exponent, where they would change it).
    const padded = text.includes('e') ? text : `${text}${Number.isInteger(v) ? '.000' : '0'}`;
    return rnd() < 0.5 ? text : rnd() < 0.5 ? padded : v;
  }
  if (Array.isArray(v)) return v.map((item) => reencode(item, rnd));
  if (typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).map(([k, item]) => [k, reencode(item, rnd)] as const);
    entries.sort(() => rnd() - 0.5);
    return Object.fromEntries(entries.filter(([, item]) => item !== undefined || rnd() < 0.5));
  }
  return v;
}

/** A real change of the value: never means the same thing. */
function mutate(v: unknown, pick: number): unknown {
  if (v === null || v === undefined) return pick % 2 === 0 ? '' : 0;
  if (typeof v === 'boolean') return !v;
  if (typeof v === 'number') return v + (pick % 2 === 0 ? 1 : -0.5);
  if (typeof v === 'string') return pick % 2 === 0 ? `${v}x` : v === '' ? null : v.slice(1);
  if (v instanceof Date) return new Date(v.getTime() + 1 + (pick % 1000));
  if (Array.isArray(v)) return v.length > 0 && pick % 2 === 0 ? [...v.slice(0, -1), mutate(v[v.length - 1], pick + 1)] : [...v, pick];
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length === 0 || pick % 3 === 0) return { ...(v as object), ['new' + pick]: pick };
  const [key, item] = entries[pick % entries.length] as [string, unknown];
  return { ...(v as object), [key]: mutate(item, pick + 1) };
}

describe('type-aware value comparison', () => {
  it('should never see a change between equal values written differently (property)', () => {
    fc.assert(
      fc.property(value, fc.integer(), (v, seed) => {
        let state = seed;
        const rnd = () => (state = (state * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
        expect(equalValues(v, reencode(v, rnd))).toBe(true);
        expect(equalValues(reencode(v, rnd), v)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('should never see equality between a value and a real change of it (property)', () => {
    fc.assert(
      fc.property(value, fc.nat(), (v, pick) => {
        expect(equalValues(v, mutate(v, pick))).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it('should compare the tricky cases by meaning', () => {
    expect(equalValues(true, 'true')).toBe(false);
    expect(equalValues(false, 0)).toBe(false);
    expect(equalValues('0', false)).toBe(false);
    expect(equalValues('20.50', 20.5)).toBe(true);
    expect(equalValues('007', '7')).toBe(false);
    expect(equalValues('007', 7)).toBe(true);
    expect(equalValues('1e3', 1000)).toBe(true);
    expect(equalValues('12345678901234567890.10', '12345678901234567890.1')).toBe(false); // strings: compared as text
    expect(equalValues(2 ** 53, '9007199254740992')).toBe(true);
    expect(equalValues(0.1 + 0.2, '0.3')).toBe(false); // a float that is not 0.3 is not 0.3
    expect(equalValues('2026-11-25T10:00:00+02:00', new Date('2026-11-25T08:00:00Z'))).toBe(true);
    expect(equalValues('2026-11-25T10:00:00+02:00', '2026-11-25T08:00:00.000Z')).toBe(true);
    expect(equalValues('2026-11-25', '2026-11-25T00:00:00Z')).toBe(false);
    expect(equalValues(null, undefined)).toBe(true);
    expect(equalValues(null, '')).toBe(false);
    expect(equalValues({ a: 1, b: null }, { a: '1' })).toBe(true);
    expect(equalValues([1, 2], [2, 1])).toBe(false);
    expect(canonicalDecimal('-0.0')).toBe('0');
    expect(changedFields({ a: 1, b: 'x', c: null }, { a: '1.0', b: 'y', d: null })).toEqual(['b']);
  });
});

describe('three-way merge', () => {
  const base = { firstName: 'Ada', email: 'ada@example.com', phone: '1' };

  it('should keep remote changes to fields not changed locally and send only local changes', () => {
    const result = mergeRecord(base, { ...base, phone: '2' }, { ...base, email: 'ada@remote.example', company: 'X' }, 'local');
    expect(result.toSend).toEqual({ phone: '2' });
    expect(result.merged).toEqual({ firstName: 'Ada', email: 'ada@remote.example', phone: '2', company: 'X' });
    expect(result.conflicts).toEqual([]);
  });

  it('should decide a field changed on both sides by priority, unless a field rule says otherwise', () => {
    const local = { ...base, phone: 'local', email: 'local@example.com' };
    const remote = { ...base, phone: 'remote', email: 'remote@example.com' };
    const localWins = mergeRecord(base, local, remote, 'local');
    expect(localWins.toSend).toEqual({ phone: 'local', email: 'local@example.com' });
    const remoteWins = mergeRecord(base, local, remote, 'remote');
    expect(remoteWins.toSend).toEqual({});
    const ruled = mergeRecord(base, local, remote, 'local', { email: 'remote' });
    expect(ruled.toSend).toEqual({ phone: 'local' });
    expect(ruled.conflicts).toEqual([
      {
        field: 'email',
        base: 'ada@example.com',
        local: 'local@example.com',
        remote: 'remote@example.com',
        winner: 'remote',
        rule: 'field_rule',
      },
      { field: 'phone', base: '1', local: 'local', remote: 'remote', winner: 'local', rule: 'priority' },
    ]);
  });

  it('should see no conflict when both sides made the same change', () => {
    const result = mergeRecord(base, { ...base, phone: '2' }, { ...base, phone: 2 }, 'remote');
    expect(result).toEqual({ merged: { ...base, phone: 2 }, toSend: {}, conflicts: [] });
  });
});
