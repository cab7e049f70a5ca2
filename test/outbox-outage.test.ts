import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Kysely, sql } from 'kysely';
import { compareRemoteWithLocal, type Demo, setupDemo } from '../examples/demo/demo-setup';
import type { TidesyncDatabase } from '../src/store/schema';
import { enqueueExport } from '../src/outbox/enqueue';
import { OutboxRelay } from '../src/outbox/relay';
import { getFreePort } from '../src/stack/ports';
import { findTemporalCli } from '../src/stack/temporal-cli';
import { startTemporalDevServer, type TemporalDevServer } from '../src/stack/temporal-server';
import { createTestDatabase, startTestEngine, type TestEngine, uniqueName, waitFor } from './helpers';

// This file runs its own Temporal dev server, so it can stop it and start it again.
describe('outbox while Temporal is down', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: Kysely<TidesyncDatabase>;
  let demo: Demo;
  let engine: TestEngine;
  let relay: OutboxRelay;
  let server: TemporalDevServer;
  let dir: string;
  let start: () => Promise<TemporalDevServer>;
  const integration = uniqueName('demo');

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tidesync-outage-'));
    const cli = await findTemporalCli({ allowSdkDownload: false });
    const port = await getFreePort();
    start = () =>
      startTemporalDevServer({ cli, port, ui: false, dbFilename: path.join(dir, 'temporal.db'), logFile: path.join(dir, 'temporal.log') });
    server = await start();
    database = await createTestDatabase();
    db = database.db;
    engine = await startTestEngine(database, { address: server.address });
    demo = await setupDemo({ db: database.app, client: engine.client, contacts: 12, integrationName: integration });
    relay = new OutboxRelay({ db, databaseUrl: database.url, client: engine.client, maxRetryDelayMs: 500 });
    relay.start();
  });
  afterAll(async () => {
    await relay?.stop();
    await engine?.close();
    await server?.stop();
    await demo?.remote.stop();
    await database?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('should keep rows pending while Temporal is down and export them all once it is back', async () => {
    // Warm up: the worker and relay work against the running server.
    await db.transaction().execute((trx) => enqueueExport(trx, { integration, connector: 'contact', id: 1 }));
    await waitFor('contact 1 exported', async () => (await compareRemoteWithLocal(demo, database.app, engine.client, [1])).matches);

    await server.stop();
    const ids = Array.from({ length: 10 }, (_, i) => i + 2);
    for (const id of ids) {
      await db.transaction().execute(async (trx) => {
        await sql`update contacts set phone = ${`during outage ${id}`} where id = ${id}`.execute(trx);
        await enqueueExport(trx, { integration, connector: 'contact', id });
      });
    }
    // The relay keeps trying; nothing is lost or marked done while the server is away.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const waiting = await db.selectFrom('outbox').select('status').where('status', '=', 'pending').execute();
    expect(waiting).toHaveLength(10);

    server = await start();
    await waitFor(
      'every row exported after the restart',
      async () => (await compareRemoteWithLocal(demo, database.app, engine.client, ids)).matches,
      90_000,
    );
    const rows = await db.selectFrom('outbox').select(['status']).execute();
    expect(rows.map((r) => r.status)).toEqual(Array(11).fill('dispatched'));
  });
});
