import { createHash } from 'node:crypto';
import { entityLockKey } from '../src/store/entity-locks';
import { canonicalJson, hashSnapshot, idempotencyKey, sha256Hex, stableKey } from '../src/sync/snapshot';

// Keys already in sync states, idempotency records and advisory locks must not change with how they are computed.
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('snapshot hashes, idempotency keys and lock keys', () => {
  it('should hash as sha256 of the canonical JSON, and key as its first 40 hex digits', () => {
    const data = { b: 'é', a: [new Date(0), { y: null, x: 1n }], c: undefined };
    expect(canonicalJson(data)).toBe('{"a":["1970-01-01T00:00:00.000Z",{"x":"1","y":null}],"b":"é"}');
    expect(hashSnapshot(data)).toBe(sha256(canonicalJson(data)));
    expect(sha256Hex('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(stableKey('a', 7, null)).toBe(sha256('a\u00007\u0000-').slice(0, 40));
    const parts = { integrationId: 3, connector: 'contact', step: 'push', entityKey: '42', previousHash: null, hash: 'h' };
    expect(idempotencyKey(parts)).toBe(sha256('3\u0000contact\u0000push\u000042\u0000-\u0000h').slice(0, 40));
  });

  it("should take an entity's lock key from the first 4 bytes of its sha256, as a signed integer", () => {
    for (const key of ['1', '42', 'tenant=a;id=7', 'ü', '99999']) {
      const expected = createHash('sha256').update(`5\u0000contact\u0000${key}`).digest().readInt32BE(0);
      expect(entityLockKey({ integrationId: 5, connector: 'contact' }, key)).toBe(expected);
    }
  });
});
