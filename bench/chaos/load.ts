/**
 * The application's side of the soak: creates, updates and deletes of demo contacts, each in its
 * own transaction with `enqueueExport` (the transactional outbox), at a steady rate. A contact's
 * email starts with `chaos.<id>.` so every remote record can be traced back to its local row.
 * Contacts of the invalid set get an email without `@`, which the demo CRM refuses with a 422.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Kysely, sql } from 'kysely';
import { enqueueExport } from 'tidesync';

/** Transactions in flight at most; a tick beyond it is skipped (PostgreSQL is restarting, say). */
const MAX_IN_FLIGHT = 16;
/** The longest the end of the load waits for its last transactions. */
const DRAIN_TIMEOUT_MS = 30_000;
/** Rows a seeding insert writes at once. */
const SEED_CHUNK = 1000;

/** What the load did. */
export interface LoadCounters {
  creates: number;
  updates: number;
  deletes: number;
  /** Creates of contacts the remote must refuse (the invalid set). */
  invalidCreates: number;
  /** Transactions that failed (rolled back, or cut off while PostgreSQL restarted). */
  failedTransactions: number;
  /** Ticks skipped because too many transactions were in flight. */
  skippedTicks: number;
}

/** A deterministic pseudo-random generator (mulberry32), so a seed replays the same choices. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The local id a remote contact's email names, or null. */
export function localIdOfEmail(email: string): number | null {
  const match = /^chaos\.(\d+)[.@]/.exec(email);
  return match ? Number(match[1]) : null;
}

/** Ids to pick from at random, with O(1) add and remove. */
class IdPool {
  readonly #ids: number[] = [];
  readonly #index = new Map<number, number>();

  get size(): number {
    return this.#ids.length;
  }

  add(id: number): void {
    if (this.#index.has(id)) return;
    this.#index.set(id, this.#ids.length);
    this.#ids.push(id);
  }

  remove(id: number): void {
    const at = this.#index.get(id);
    if (at === undefined) return;
    const last = this.#ids.pop() as number;
    this.#index.delete(id);
    if (last !== id) {
      this.#ids[at] = last;
      this.#index.set(last, at);
    }
  }

  pick(random: () => number): number | undefined {
    return this.#ids[Math.floor(random() * this.#ids.length)];
  }
}

/** Options of `ChangeLoad`. */
export interface ChangeLoadOptions {
  /** The application's own pool. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly db: Kysely<any>;
  readonly integration: string;
  readonly random: () => number;
}

/** Produces the changes. */
export class ChangeLoad {
  readonly #options: ChangeLoadOptions;
  /** Contacts the load may update (valid and invalid) and delete (valid only). */
  readonly #updatable = new IdPool();
  readonly #deletable = new IdPool();
  /** Contacts with a transaction in flight: never two at once for one contact. */
  readonly #busy = new Set<number>();
  /** The invalid set: when each one's create committed (ms since the epoch). */
  readonly #invalid = new Map<number, number>();
  readonly counters: LoadCounters = { creates: 0, updates: 0, deletes: 0, invalidCreates: 0, failedTransactions: 0, skippedTicks: 0 };
  #nextId = 1;
  #seq = 0;
  #seeded = 0;

  constructor(options: ChangeLoadOptions) {
    this.#options = options;
  }

  /** Ids of the invalid set whose create committed, with the time it did (ms since the epoch). */
  get invalidIds(): ReadonlyMap<number, number> {
    return this.#invalid;
  }

  /** Contacts `seed` inserted (ids 1 up to it). */
  get seeded(): number {
    return this.#seeded;
  }

  /** The highest id handed out: every local contact the soak made has an id up to it. */
  get maxId(): number {
    return this.#nextId - 1;
  }

  /** Changes made (committed), of every kind. */
  get changesMade(): number {
    const c = this.counters;
    return c.creates + c.updates + c.deletes + c.invalidCreates;
  }

  /**
   * Inserts `count` contacts without enqueueing an export, as rows an application had before it
   * used tidesync (only a bulk export brings them to the remote), and lets the load change and
   * delete them like any other. Call it first: it takes the next ids.
   */
  async seed(count: number): Promise<void> {
    for (let done = 0; done < count; done += SEED_CHUNK) {
      const rows = Array.from({ length: Math.min(SEED_CHUNK, count - done) }, () => {
        const id = this.#nextId++;
        return { id, first_name: 'Seed', last_name: `No${id}`, email: `chaos.${id}@example.com`, phone: null, company: 'Before Ltd' };
      });
      await this.#options.db.insertInto('contacts').values(rows).execute();
      for (const { id } of rows) {
        this.#updatable.add(id);
        this.#deletable.add(id);
      }
      this.#seeded += rows.length;
    }
  }

  /** Creates one contact; `invalid` makes one the remote refuses. Returns its id, or null when the transaction failed. */
  async create(invalid = false): Promise<number | null> {
    const id = this.#nextId++;
    const email = invalid ? `chaos.${id}.at.invalid` : `chaos.${id}@example.com`;
    const row = { id, first_name: 'Chaos', last_name: `No${id}`, email, phone: null, company: 'Soak Ltd' };
    const ok = await this.#transaction(id, (trx) => trx.insertInto('contacts').values(row).execute());
    if (!ok) return null;
    if (invalid) {
      this.#invalid.set(id, Date.now());
      this.counters.invalidCreates += 1;
    } else {
      this.#deletable.add(id);
      this.counters.creates += 1;
    }
    this.#updatable.add(id);
    return id;
  }

  /** Changes one or two fields of a random contact (the invalid set keeps its invalid email). */
  async update(): Promise<void> {
    const id = this.#pickIdle(this.#updatable);
    if (id === undefined) return;
    const seq = ++this.#seq;
    const r = this.#options.random();
    const changes: Record<string, string> =
      r < 0.4
        ? { phone: `+1-555-${seq}` }
        : r < 0.7
          ? { company: `Company ${seq}` }
          : r < 0.9 || this.#invalid.has(id)
            ? { last_name: `No${id}-${seq}`, phone: `+1-556-${seq}` }
            : { email: `chaos.${id}.${seq}@example.com` };
    const ok = await this.#transaction(id, (trx) =>
      trx
        .updateTable('contacts')
        .set({ ...changes, updated_at: sql`now()` })
        .where('id', '=', id)
        .execute(),
    );
    if (ok) this.counters.updates += 1;
  }

  /** Deletes a random valid contact. */
  async delete(): Promise<void> {
    const id = this.#pickIdle(this.#deletable);
    if (id === undefined) return;
    this.#deletable.remove(id);
    this.#updatable.remove(id);
    const ok = await this.#transaction(id, (trx) => trx.deleteFrom('contacts').where('id', '=', id).execute());
    if (ok) this.counters.deletes += 1;
    else {
      // Maybe not deleted: it may be changed again.
      this.#deletable.add(id);
      this.#updatable.add(id);
    }
  }

  /**
   * Fires `rate` changes a second for `durationMs` (or until `signal` aborts) on a fixed schedule:
   * a quarter creates, two thirds updates, the rest deletes, while enough contacts exist.
   */
  async run(rate: number, durationMs: number, signal: AbortSignal): Promise<void> {
    const intervalMs = 1000 / rate;
    const start = performance.now();
    const inFlight = new Set<Promise<void>>();
    for (let i = 0; performance.now() - start < durationMs && !signal.aborted; i++) {
      const due = start + i * intervalMs;
      if (due > performance.now()) await sleep(due - performance.now());
      if (inFlight.size >= MAX_IN_FLIGHT) {
        this.counters.skippedTicks += 1;
        continue;
      }
      const change = this.#next();
      inFlight.add(change);
      void change.finally(() => inFlight.delete(change));
    }
    await Promise.race([Promise.allSettled(inFlight), sleep(DRAIN_TIMEOUT_MS, undefined, { ref: false })]);
  }

  #next(): Promise<void> {
    const r = this.#options.random();
    if (this.#updatable.size < 20 || r < 0.25) return this.create().then(() => undefined);
    if (r < 0.9) return this.update();
    return this.delete();
  }

  #pickIdle(pool: IdPool): number | undefined {
    for (let attempt = 0; attempt < 5; attempt++) {
      const id = pool.pick(this.#options.random);
      if (id !== undefined && !this.#busy.has(id)) return id;
    }
    return undefined;
  }

  /** Runs `change` and the outbox row in one transaction; false when it failed. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async #transaction(id: number, change: (trx: Kysely<any>) => Promise<unknown>): Promise<boolean> {
    this.#busy.add(id);
    try {
      await this.#options.db.transaction().execute(async (trx) => {
        await change(trx);
        await enqueueExport(trx, { integration: this.#options.integration, connector: 'contact', id });
      });
      return true;
    } catch {
      this.counters.failedTransactions += 1;
      return false;
    } finally {
      this.#busy.delete(id);
    }
  }
}
