/**
 * The one wiring of tidesync: database and migrations, registries, Temporal connections, client,
 * and optionally a worker and an outbox relay, closed in the reverse order. `tidesync worker`,
 * `tidesync dev`, every command, the tests and the benchmarks start tidesync through here.
 */
import { Client, type Connection } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import type { NativeConnection, Worker } from '@temporalio/worker';
import type { Kysely } from 'kysely';
import { TidesyncClient } from './client';
import { codecDataConverter, createCodec } from './codec/data-converter';
import type { TidesyncConfig } from './config/define-config';
import { type Servers, resolveServers, taskQueueOf } from './config/servers';
import { parseDuration } from './retry-policy';
import { OutboxRelay } from './outbox/relay';
import { type Runtime, type RuntimeDeclarations, createRuntime } from './runtime';
import { type Databases, openDatabases } from './store/db';
import { migrateToLatest } from './store/migrations';
import type { TidesyncDatabase } from './store/schema';
import { connectClientConnection, connectWorkerConnection } from './temporal/connection';

/** Options of `startTidesync`. */
export interface StartOptions {
  /** Run a worker in this process (`tidesync worker`); default false. */
  readonly worker?: boolean;
  /** Run an outbox relay in this process; default false. */
  readonly relay?: boolean;
  /** Check job parameters against the database (readers' tables and columns); default: when a worker runs. */
  readonly prepare?: boolean;
  /** The servers; default from the config, the environment, or a running `tidesync dev` stack. */
  readonly servers?: Servers;
  /** The task queue; default `TIDESYNC_TASK_QUEUE`, the config's, or `tidesync`. */
  readonly taskQueue?: string;
  /** Connections in the database pool; default the config's, or 10. */
  readonly poolSize?: number;
  /** Registers more connectors and services by code, besides the config's. */
  readonly register?: RuntimeDeclarations['register'];
  /** A pre-built workflow bundle for the worker (see `createWorker`). */
  readonly workflowBundlePath?: string;
  /** Where the relay reports problems; default stderr. */
  readonly log?: (line: string) => void;
}

/** A started tidesync: use its parts, then `close()` it. */
export interface Tidesync {
  readonly config: TidesyncConfig;
  readonly servers: Servers;
  readonly taskQueue: string;
  /** The application's database (the same pool tidesync uses). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly db: Kysely<any>;
  /** tidesync's own tables. */
  readonly store: Kysely<TidesyncDatabase>;
  readonly runtime: Runtime;
  readonly client: TidesyncClient;
  /** The Temporal client (workflows, schedules); it encrypts and decrypts when a codec is configured. */
  readonly temporal: Client;
  /** The data converter of the client and the worker: the config's codec, or undefined when it has none. */
  readonly dataConverter: DataConverter | undefined;
  readonly worker: Worker | undefined;
  readonly relay: OutboxRelay | undefined;
  /** Settles when the worker stops (at once when there is none); rejects if it fails. */
  readonly workerDone: Promise<void>;
  /** Adds something to close first when `close()` runs (a server built on this tidesync). */
  onClose(close: () => Promise<unknown>): void;
  /** Stops the relay and the worker, then closes the connections and the pool; safe to call twice. */
  close(): Promise<void>;
}

/** Starts tidesync for `config`; on any failure, what was already opened is closed again. */
export async function startTidesync(config: TidesyncConfig, options: StartOptions = {}): Promise<Tidesync> {
  const servers = options.servers ?? (await resolveServers(config));
  const taskQueue = options.taskQueue ?? taskQueueOf(config);
  const log = options.log ?? ((line: string) => console.error(line));
  // Closed in reverse order of opening.
  const closers: Array<() => Promise<unknown>> = [];
  const closeAll = async () => {
    const errors: unknown[] = [];
    for (const close of closers.splice(0).reverse()) await close().catch((err: unknown) => errors.push(err));
    if (errors.length > 0) throw errors[0];
  };
  try {
    // Keys are resolved first: a missing or malformed key fails before anything connects.
    const dataConverter = config.codec ? codecDataConverter(await createCodec(config.codec, config.resolveSecret)) : undefined;
    const databases: Databases = openDatabases(servers.databaseUrl, {
      ...(config.database?.schema ? { schema: config.database.schema } : {}),
      max: options.poolSize ?? config.database?.poolSize ?? 10,
    });
    closers.push(() => databases.destroy());
    await migrateToLatest(databases.app, databases.schema);
    const runtime = await createRuntime({
      ...config,
      ...(options.register ? { register: options.register } : {}),
      databases,
      prepare: options.prepare ?? options.worker ?? false,
    });

    const clientConnection: Connection = await connectClientConnection(servers.temporal);
    closers.push(() => clientConnection.close());
    const temporal = new Client({
      connection: clientConnection,
      namespace: servers.temporal.namespace,
      ...(dataConverter ? { dataConverter } : {}),
    });
    const client = new TidesyncClient({ runtime, temporal, taskQueue });

    let worker: Worker | undefined;
    let workerDone: Promise<void> = Promise.resolve();
    if (options.worker) {
      const { createWorker } = await import('./worker');
      const connection: NativeConnection = await connectWorkerConnection(servers.temporal);
      closers.push(() => connection.close());
      const created = await createWorker({
        runtime,
        connection,
        namespace: servers.temporal.namespace,
        taskQueue,
        ...(config.resolveSecret ? { resolveSecret: config.resolveSecret } : {}),
        ...(dataConverter ? { dataConverter } : {}),
        ...(options.workflowBundlePath ? { workflowBundlePath: options.workflowBundlePath } : {}),
        ...(config.worker?.maxConcurrentActivityTaskExecutions
          ? { maxConcurrentActivityTaskExecutions: config.worker.maxConcurrentActivityTaskExecutions }
          : {}),
      });
      worker = created;
      workerDone = created.run();
      // Whoever cares awaits `workerDone` (`tidesync worker` does); `close()` reports it either way.
      workerDone.catch(() => undefined);
      // The SDK shuts workers down by itself on SIGINT/SIGTERM; only ask when it has not.
      closers.push(async () => {
        if (created.getState() === 'RUNNING') created.shutdown();
        await workerDone;
      });
    }

    let relay: OutboxRelay | undefined;
    if (options.relay) {
      relay = new OutboxRelay({
        db: runtime.store,
        databaseUrl: servers.databaseUrl,
        client,
        log,
        ...(config.outbox?.retention !== undefined ? { retentionMs: parseDuration(config.outbox.retention, 'outbox.retention') } : {}),
      });
      relay.start();
      const started = relay;
      closers.push(() => started.stop());
    }

    return {
      config,
      servers,
      taskQueue,
      db: databases.app,
      store: databases.store,
      runtime,
      client,
      temporal,
      dataConverter,
      worker,
      relay,
      workerDone,
      onClose: (close) => void closers.push(close),
      close: closeAll,
    };
  } catch (err) {
    await closeAll().catch(() => undefined);
    throw err;
  }
}
