/** `tidesync worker`: runs the Temporal worker against the configured servers until stopped. */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { TidesyncClient } from '../client';
import { OutboxRelay } from '../outbox/relay';
import type { Kysely } from 'kysely';
import { readConfig } from '../config';
import { createDb } from '../db/connect';
import { migrateToLatest } from '../db/migrations';
import { createRuntime } from '../runtime';
import { createWorker } from '../worker';
import { resolveServers } from './connect';

/** Runs the worker (and a relay); SIGINT/SIGTERM shut it down gracefully (the SDK handles the signals). */
export async function workerCommand(options: { relay: boolean } = { relay: true }): Promise<number> {
  const config = readConfig();
  const servers = await resolveServers(config);
  const db = createDb(servers.databaseUrl);
  try {
    await migrateToLatest(db as Kysely<unknown>);
    const runtime = await createRuntime({ db, jobDirs: config.jobDirs });
    const connection = await NativeConnection.connect({ address: servers.temporalAddress });
    try {
      const worker = await createWorker({ runtime, connection, namespace: servers.namespace, taskQueue: config.taskQueue });
      console.error(
        `worker polling task queue '${config.taskQueue}' on ${servers.temporalAddress} (jobs: ${[...runtime.jobs.keys()].join(', ')})`,
      );
      const temporal = await Connection.connect({ address: servers.temporalAddress });
      const relay = options.relay
        ? new OutboxRelay({
            db,
            databaseUrl: servers.databaseUrl,
            client: new TidesyncClient({ runtime, db, temporal: new Client({ connection: temporal, namespace: servers.namespace }), taskQueue: config.taskQueue }),
            log: (line) => console.error(line),
          })
        : undefined;
      relay?.start();
      try {
        await worker.run();
      } finally {
        await relay?.stop();
        await temporal.close();
      }
    } finally {
      await connection.close();
    }
    return 0;
  } finally {
    await db.destroy();
  }
}
