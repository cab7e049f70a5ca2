/**
 * The database handles the worker, the client and the CLI share: one pool, seen two ways. The
 * application's tables are read through `app`; tidesync's own tables live in their own schema
 * (`tidesync` by default) and are reached through `store`, a view that qualifies every table.
 */
import { Kysely, PostgresDialect } from 'kysely';
import { Pool } from 'pg';
import { ConfigurationError } from '../errors';
import { EntityLocks } from './entity-locks';
import { RemoteLimiter } from './remote-limiter';
import { RequestSlots } from './request-slots';
import type { TidesyncDatabase } from './schema';

/** The schema tidesync's tables live in unless configured otherwise. */
export const DEFAULT_SCHEMA = 'tidesync';

/** Both views of one connection pool. */
export interface Databases {
  /** The application's database (readers, write-backs, capture triggers); untyped. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly app: Kysely<any>;
  /** tidesync's own tables, in `schema`. */
  readonly store: Kysely<TidesyncDatabase>;
  /** The schema of tidesync's tables. */
  readonly schema: string;
  /** Per-entity write locks, on a pool of their own opened at first use (see `entity-locks.ts`). */
  readonly locks: EntityLocks;
  /** The integrations' rate limits, kept with every other process (see `remote-limiter.ts`); its pool opens at first use. */
  readonly limiter: RemoteLimiter;
  /** Closes the pools. */
  destroy(): Promise<void>;
}

/** Options of `openDatabases`. */
export interface DatabaseOptions {
  /** Connections in the pool; default 10. */
  readonly max?: number;
  /** Schema of tidesync's tables; default `tidesync`. */
  readonly schema?: string;
}

/** Checks a schema name: it is quoted everywhere, but a plain name keeps SQL and logs readable. */
export function checkSchemaName(schema: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new ConfigurationError(`database schema '${schema}' is not valid: use lower_snake_case letters, digits and _`);
  }
  return schema;
}

/** Opens a pool on `url` and returns both views of it, and the entity locks. Close them with `destroy()`. */
export function openDatabases(url: string, options: DatabaseOptions = {}): Databases {
  const schema = checkSchemaName(options.schema ?? DEFAULT_SCHEMA);
  const pool = new Pool({ connectionString: url, max: options.max ?? 10 });
  // An idle client that errors (server restart) must not crash the process: the pool replaces it.
  pool.on('error', () => undefined);
  // Nor a checked-out one: between two queries (a transaction waiting on Temporal, like the relay's)
  // pg emits the server's FATAL as an 'error' on the client, which has no listener while it is out
  // of the pool. Its next query fails instead, and the pool drops it when it is released.
  pool.on('connect', (client) => client.on('error', () => undefined));
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const app = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
  const locks = new EntityLocks(url, options.max ?? 10);
  const store = storeDb(app, schema);
  const limiter = new RemoteLimiter(store, new RequestSlots(url, options.max ?? 10));
  return {
    app,
    store,
    schema,
    locks,
    limiter,
    destroy: async () => {
      await limiter.close();
      await locks.close();
      await app.destroy();
    },
  };
}

/** tidesync's tables seen through any Kysely on the application's database (a transaction too). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function storeDb(db: Kysely<any>, schema: string = DEFAULT_SCHEMA): Kysely<TidesyncDatabase> {
  return (db as Kysely<TidesyncDatabase>).withSchema(schema);
}
