/**
 * The demo CRM's memory of idempotent responses, bounded by age and by size. Age alone, like
 * Stripe's 24 hours, does not bound memory: a bulk export remembers a response per batch and
 * per contact, millions a day. Size alone would keep a stale key for days on an idle CRM. So a
 * record is kept while it is younger than `maxAgeMs` and the newest records together hold at most
 * `maxWeight` contacts (a batch answer weighs its number of results); the oldest go first.
 */

/** A response remembered under an idempotency key, replayed verbatim for a repeated request. */
export interface StoredResponse {
  status: number;
  body: unknown;
  etag?: string | undefined;
}

/** What is kept under one idempotency key: the request's route, its response and when. */
export interface IdempotencyRecord {
  method: string;
  path: string;
  response: StoredResponse;
  /** When the response was first given, in milliseconds since the epoch. */
  at: number;
}

/** How much the cache keeps. */
export interface IdempotencyLimits {
  /** Records older than this are forgotten. */
  readonly maxAgeMs: number;
  /** The most contacts the kept responses may hold together. */
  readonly maxWeight: number;
}

/**
 * A day, as Stripe keeps keys; and 50,000 contacts (about 12 MB), some 250 batches of 100 with
 * their per-contact keys: far more than a retrying writer has in flight, yet a bounded heap.
 */
export const DEFAULT_IDEMPOTENCY_LIMITS: IdempotencyLimits = { maxAgeMs: 24 * 60 * 60 * 1000, maxWeight: 50_000 };

/** How many contacts a response holds: the results of a batch answer, else one. */
function weightOf(response: StoredResponse): number {
  const results = (response.body as { results?: unknown } | null)?.results;
  return Array.isArray(results) ? Math.max(1, results.length) : 1;
}

/** Idempotency records in the order they were given, the oldest forgotten first. */
export class IdempotencyCache {
  readonly #records = new Map<string, IdempotencyRecord>();
  /**
   * The records in the order given, read from `#head`: a queue beside the Map, because finding
   * the oldest by iterating a Map from its start gets slower with every deletion (V8 keeps deleted
   * slots until it rehashes), which made every write of a long export slower than the last.
   * Entries whose key has since been given another record or deleted are skipped.
   */
  #order: Array<readonly [string, IdempotencyRecord]> = [];
  #head = 0;
  readonly #limits: IdempotencyLimits;
  readonly #now: () => number;
  #weight = 0;

  constructor(limits: IdempotencyLimits = DEFAULT_IDEMPOTENCY_LIMITS, now: () => number = Date.now) {
    this.#limits = limits;
    this.#now = now;
  }

  /** How many records are kept. */
  get size(): number {
    return this.#records.size;
  }

  /** The contacts the kept responses hold together. */
  get weight(): number {
    return this.#weight;
  }

  /** The record of `key`, unless it is unknown or too old. */
  get(key: string): IdempotencyRecord | undefined {
    const record = this.#records.get(key);
    return record && record.at >= this.#now() - this.#limits.maxAgeMs ? record : undefined;
  }

  /** Keeps a record (as given: callers pass a copy) and forgets what falls past the limits. */
  set(key: string, record: IdempotencyRecord): void {
    this.#delete(key);
    this.#records.set(key, record);
    this.#order.push([key, record]);
    this.#weight += weightOf(record.response);
    this.#evict();
  }

  /** The kept records, oldest first. */
  entries(): Array<[string, IdempotencyRecord]> {
    this.#evict();
    return this.#order.slice(this.#head).flatMap(([key, record]) => (this.#records.get(key) === record ? [[key, record]] : []));
  }

  /** Forgets every record. */
  clear(): void {
    this.#records.clear();
    this.#order = [];
    this.#head = 0;
    this.#weight = 0;
  }

  #delete(key: string): void {
    const record = this.#records.get(key);
    if (!record) return;
    this.#records.delete(key);
    this.#weight -= weightOf(record.response);
  }

  #evict(): void {
    const oldestAllowed = this.#now() - this.#limits.maxAgeMs;
    for (; this.#head < this.#order.length; this.#head += 1) {
      const [key, record] = this.#order[this.#head] as readonly [string, IdempotencyRecord];
      if (this.#records.get(key) !== record) continue;
      // The queue is in age order, so the first record that may stay ends the sweep.
      if (this.#weight <= this.#limits.maxWeight && record.at >= oldestAllowed) break;
      this.#delete(key);
    }
    // Drop the consumed part once it is most of the array: amortized, each entry is copied once.
    if (this.#head > 1024 && this.#head * 2 > this.#order.length) {
      this.#order = this.#order.slice(this.#head);
      this.#head = 0;
    }
  }
}
