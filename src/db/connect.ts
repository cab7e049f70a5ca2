/** Opens the Kysely instance the worker, the client and the CLI share. */
import { Kysely, PostgresDialect } from 'kysely';
import { Pool } from 'pg';
import type { TidesyncDatabase } from './schema';

/** Creates a Kysely instance on a connection pool for `url`. Close it with `db.destroy()`. */
export function createDb(url: string, options: { max?: number } = {}): Kysely<TidesyncDatabase> {
  const pool = new Pool({ connectionString: url, max: options.max ?? 10 });
  // An idle client that errors (server restart) must not crash the process: the pool replaces it.
  pool.on('error', () => undefined);
  return new Kysely<TidesyncDatabase>({ dialect: new PostgresDialect({ pool }) });
}
