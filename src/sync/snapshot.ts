/** Canonical form and hash of a changeset, so equal data always hashes the same. */
import crypto from 'node:crypto';

/**
 * sha256 of a text, hex. The one-shot `crypto.hash` (Node 20.12 and later) takes half the time of
 * `createHash` for the short texts hashed here; a bulk export hashes three per row.
 */
export const sha256Hex: (text: string) => string =
  typeof crypto.hash === 'function'
    ? (text) => crypto.hash('sha256', text, 'hex')
    : (text) => crypto.createHash('sha256').update(text).digest('hex');

/** JSON with object keys sorted at every depth; Dates as ISO strings; undefined fields dropped. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(normalise(value));
}

function normalise(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(normalise);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = normalise(v);
    }
    return out;
  }
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/** sha256 of the canonical JSON, hex. */
export function hashSnapshot(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}

/** A short, stable key from parts (null written as `-`): the same parts always give the same key. */
export function stableKey(...parts: ReadonlyArray<string | number | null>): string {
  return sha256Hex(parts.map((p) => p ?? '-').join('\u0000')).slice(0, 40);
}

/**
 * The idempotency key of one change: the same for every retry of that change, different for any
 * other change of the same entity (it includes the state the change starts from, so A -> B -> A
 * sends the second A with a new key).
 */
export function idempotencyKey(parts: {
  integrationId: number;
  connector: string;
  step: string;
  entityKey: string;
  previousHash: string | null;
  hash: string;
}): string {
  return stableKey(parts.integrationId, parts.connector, parts.step, parts.entityKey, parts.previousHash, parts.hash);
}
