/**
 * Per-entity locks that order every remote write of one entity: the per-entity export and the
 * bulk export take the entity's PostgreSQL advisory transaction lock around "read the row and
 * its sync state again, write, save the sync state", so two writers of one entity never
 * interleave and the later one always writes what the row held once it had the lock.
 *
 * The locks live on a pool of their own. A lock is held across a remote call; if it took a
 * connection of the main pool, writers holding locks could use up that pool and then wait forever
 * for one more connection to read or save with. Here a writer takes a lock connection first,
 * holding nothing else, and everything it does under the lock uses the main pool, whose
 * connections are never held across a wait.
 */
import { Pool } from 'pg';
import { sha256Hex } from '../sync/snapshot';
import type { SyncScope } from './sync-state';

/**
 * The first key of tidesync's two-key advisory locks (`pg_advisory_xact_lock(int, int)`): the
 * two-key space does not overlap the one-key (bigint) space applications usually use, and this
 * constant ("tide") keeps us apart from other users of the two-key space.
 */
export const ENTITY_LOCK_SPACE = 0x74696465;

/**
 * The longest a writer waits for an entity's lock: another writer holds it across one remote call
 * (a batch of at most a few seconds); 20 s is well above that and below the activities' heartbeat
 * timeouts, so a stuck holder fails the waiting write (retried) rather than its heartbeat.
 */
export const ENTITY_LOCK_TIMEOUT_MS = 20_000;

/** The lock key of one entity: 32 bits of a hash, the same in every process. */
export function entityLockKey(scope: SyncScope, key: string): number {
  // The first 4 bytes as a signed 32-bit integer.
  return Number.parseInt(sha256Hex(`${scope.integrationId}\u0000${scope.connector}\u0000${key}`).slice(0, 8), 16) | 0;
}

/** Takes per-entity locks on a pool of its own (see the module comment). */
export class EntityLocks {
  readonly #url: string;
  readonly #max: number;
  #pool: Pool | undefined;

  /** `max`: connections of the lock pool, i.e. writes one process has in flight at most. */
  constructor(url: string, max: number) {
    this.#url = url;
    this.#max = max;
  }

  /**
   * Runs `fn` holding the locks of `keys` (taken in key order, so two writers locking overlapping
   * sets cannot deadlock) and releases them when it settles, whatever the outcome.
   */
  async withLocks<T>(scope: SyncScope, keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const lockKeys = [...new Set(keys.map((key) => entityLockKey(scope, key)))].sort((a, b) => a - b);
    if (lockKeys.length === 0) return fn();
    this.#pool ??= this.#open();
    const client = await this.#pool.connect();
    let broken = false;
    try {
      // One round trip for the three: the simple protocol takes several statements, but no
      // parameters, so the keys (integers of our own making) are written into the statement. unnest
      // yields the (sorted) keys in array order, so the locks are taken in that order; counted, so
      // the answer is one row and not one per key (a volatile call in a subquery is never dropped).
      await client.query(
        `begin; set local lock_timeout = ${ENTITY_LOCK_TIMEOUT_MS}; ` +
          `select count(*) from (select pg_advisory_xact_lock(${ENTITY_LOCK_SPACE}, k) from unnest('{${lockKeys.join(',')}}'::int4[]) as t(k)) as locked`,
      );
      const result = await fn();
      await client.query('commit');
      return result;
    } catch (err) {
      await client.query('rollback').catch(() => {
        broken = true;
      });
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /** Closes the lock pool (when it was opened). */
  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.end();
  }

  #open(): Pool {
    const pool = new Pool({ connectionString: this.#url, max: this.#max });
    // An idle client that errors (server restart) must not crash the process: the pool replaces it.
    pool.on('error', () => undefined);
    return pool;
  }
}
