/**
 * Finds the servers a command talks to: `DATABASE_URL` / `TEMPORAL_ADDRESS` when set, otherwise
 * a `tidesync dev` stack running on this machine.
 */
import { Client, Connection } from '@temporalio/client';
import type { Kysely } from 'kysely';
import { TidesyncClient } from '../client';
import { readConfig, type TidesyncConfig } from '../config';
import { ConfigurationError } from '../connectors/errors';
import { createDb } from '../db/connect';
import { migrateToLatest } from '../db/migrations';
import type { TidesyncDatabase } from '../db/schema';
import { type Runtime, createRuntime } from '../runtime';
import { readDevStackFile } from '../stack/dev-stack';

/** Where the servers are. */
export interface ServerAddresses {
  readonly databaseUrl: string;
  readonly temporalAddress: string;
  readonly namespace: string;
  readonly uiUrl: string | null;
}

/** Resolves server addresses from the environment or a running dev stack. */
export async function resolveServers(config: TidesyncConfig = readConfig()): Promise<ServerAddresses> {
  const dev = await readDevStackFile();
  const databaseUrl = config.databaseUrl ?? dev?.databaseUrl;
  const temporalAddress = config.temporalAddress ?? dev?.temporalAddress;
  if (!databaseUrl || !temporalAddress) {
    throw new ConfigurationError(
      `no ${!databaseUrl ? 'database' : 'Temporal server'} configured: set ${!databaseUrl ? 'DATABASE_URL' : 'TEMPORAL_ADDRESS'}, ` +
        'or start the embedded stack with `tidesync dev` in another terminal',
    );
  }
  return {
    databaseUrl,
    temporalAddress,
    namespace: config.temporalAddress ? config.namespace : (dev?.namespace ?? config.namespace),
    uiUrl: config.temporalAddress ? null : (dev?.uiUrl ?? null),
  };
}

/** Everything a client-side command needs, closed by `close()`. */
export interface CommandContext {
  readonly config: TidesyncConfig;
  readonly servers: ServerAddresses;
  readonly db: Kysely<TidesyncDatabase>;
  readonly runtime: Runtime;
  readonly client: TidesyncClient;
  close(): Promise<void>;
}

/** Connects to the database (migrating it) and Temporal, and builds a `TidesyncClient`. */
export async function openCommandContext(): Promise<CommandContext> {
  const config = readConfig();
  const servers = await resolveServers(config);
  const db = createDb(servers.databaseUrl, { max: 4 });
  try {
    await migrateToLatest(db as Kysely<unknown>);
    const runtime = await createRuntime({ db, jobDirs: config.jobDirs, prepare: false });
    const connection = await Connection.connect({ address: servers.temporalAddress });
    const client = new TidesyncClient({
      runtime,
      db,
      temporal: new Client({ connection, namespace: servers.namespace }),
      taskQueue: config.taskQueue,
    });
    return {
      config,
      servers,
      db,
      runtime,
      client,
      async close() {
        await connection.close();
        await db.destroy();
      },
    };
  } catch (err) {
    await db.destroy();
    throw err;
  }
}
