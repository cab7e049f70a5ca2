/**
 * tidesync's own writes to application tables (remote ids written back) carry an origin marker,
 * so capture triggers do not export them again.
 */
import { type Kysely, type Transaction, sql } from 'kysely';

/** The session setting that marks tidesync's own writes. */
export const ORIGIN_SETTING = 'tidesync.origin';

/**
 * Runs `fn` in a transaction marked as tidesync's own (`SET LOCAL tidesync.origin`), so capture
 * triggers ignore its writes: a remote id written back to a local row does not export again.
 */
export async function withTidesyncOrigin<DB, T>(db: Kysely<DB>, fn: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await sql`select set_config(${ORIGIN_SETTING}, 'tidesync', true)`.execute(trx);
    return fn(trx);
  });
}
