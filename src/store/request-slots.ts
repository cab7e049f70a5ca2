/**
 * Concurrency slots of an integration's remote, shared by every worker process: slot `i` of
 * integration `n` is a PostgreSQL session advisory lock, held by the connection of the request
 * that uses it for as long as the request is in flight. A worker that dies (SIGKILL, a lost
 * network) loses its connections, and PostgreSQL releases their locks at once: no slot leaks, and
 * no lease has to outlast the slowest request.
 *
 * The slots live on a pool of their own, like the entity locks (`entity-locks.ts`) and for the
 * same reason: a held slot holds its connection across a remote call, and must never take one
 * that the reads and saves under it need.
 */
import { createHash } from 'node:crypto';
import { Pool, type PoolClient } from 'pg';

/**
 * The first key of tidesync's request slots (`pg_try_advisory_lock(int, int)`), apart from the
 * entity locks' ("tide") and from the one-key space applications usually use: "tidr".
 */
export const REQUEST_SLOT_SPACE = 0x74696472;

/** The lock key of slot `slot` of an integration: 32 bits of a hash, the same in every process. */
export function requestSlotKey(integrationId: number, slot: number): number {
  return createHash('sha256').update(`${integrationId}\u0000${slot}`).digest().readInt32BE(0);
}

/** A slot this process holds; `release()` gives it back (once; later calls do nothing). */
export interface HeldSlot {
  readonly slot: number;
  release(): Promise<void>;
}

/** Takes and releases request slots on a pool of its own (see the module comment). */
export class RequestSlots {
  readonly #url: string;
  readonly #max: number;
  #pool: Pool | undefined;

  /** `max`: connections of the slot pool, i.e. limited requests one process has in flight at most. */
  constructor(url: string, max: number) {
    this.#url = url;
    this.#max = max;
  }

  /**
   * Takes a free slot of the integration's `count` (trying them from a random one, so processes
   * do not all start at slot 0), or resolves null when all are held. One statement.
   */
  async tryTake(integrationId: number, count: number): Promise<HeldSlot | null> {
    const first = Math.floor(Math.random() * count);
    const order = Array.from({ length: count }, (_, i) => (first + i) % count);
    this.#pool ??= this.#open();
    const client = await this.#pool.connect();
    let taken: number | undefined;
    try {
      // Rows are filtered one at a time in array order and the limit stops at the first lock
      // taken, so exactly one slot (or none) is locked.
      const result = await client.query<{ slot: number }>(
        `select t.slot from unnest($2::int4[], $3::int4[]) as t(slot, k) where pg_try_advisory_lock($1::int4, t.k) limit 1`,
        [REQUEST_SLOT_SPACE, order, order.map((slot) => requestSlotKey(integrationId, slot))],
      );
      taken = result.rows[0]?.slot;
    } catch (err) {
      client.release(true);
      throw err;
    }
    if (taken === undefined) {
      client.release();
      return null;
    }
    return held(client, taken, requestSlotKey(integrationId, taken));
  }

  /** Closes the slot pool (when it was opened); slots still held are released with their connections. */
  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.end();
  }

  #open(): Pool {
    const pool = new Pool({ connectionString: this.#url, max: this.#max });
    // An idle client that errors (server restart) must not crash the process: the pool replaces it.
    pool.on('error', () => undefined);
    // Nor a held one (its query fails instead, and it is dropped when released).
    pool.on('connect', (client) => client.on('error', () => undefined));
    return pool;
  }
}

function held(client: PoolClient, slot: number, key: number): HeldSlot {
  let released: Promise<void> | undefined;
  return {
    slot,
    release: () =>
      (released ??= client.query('select pg_advisory_unlock($1::int4, $2::int4)', [REQUEST_SLOT_SPACE, key]).then(
        () => client.release(),
        // A connection that cannot unlock is dropped: closing it releases the lock.
        () => client.release(true),
      )),
  };
}
