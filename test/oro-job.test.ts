import path from 'node:path';
import { type Kysely, sql } from 'kysely';
import type { Change, Connector, Entity, Integration, Processor, Writer } from '../src/connectors/connector';
import { installCapture } from '../src/outbox/capture';
import { createTestDatabase, startTestEngine, type TestEngine, uniqueName } from './helpers';

/** Holds only `oro-batch-job.yml`: Oro's example export job, copied verbatim from its documentation. */
const ORO_JOBS_DIR = path.join(__dirname, 'fixtures', 'jobs');

/** What the remote instance received: one entry per write, with the change's idempotency key. */
interface Pushed {
  readonly remoteId: string;
  readonly operation: Change['operation'];
  readonly idempotencyKey: string;
  readonly data: Entity;
}

describe("Oro's example export job, run through Temporal", () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let db: Kysely<any>;
  let engine: TestEngine;
  let integration: Integration;
  const remote: Pushed[] = [];

  /** YOUR_PROCESSOR: prepares the changeset the remote expects from a local row. */
  const processor: Processor = {
    process: (row) => ({
      kind: 'changeset',
      data: { sku: `W-${String(row['id'])}`, label: String(row['name']).toUpperCase(), cents: row['price_cents'] },
    }),
  };

  /** YOUR_REVERSE_WRITER: pushes to the in-memory remote, which honours idempotency keys. */
  const writer: Writer = {
    async write(change) {
      const earlier = remote.find((p) => p.idempotencyKey === change.idempotencyKey);
      if (earlier) return { remoteId: earlier.remoteId, remoteVersion: '1' };
      const remoteId = change.remoteId ?? `remote-${remote.length + 1}`;
      remote.push({ remoteId, operation: change.operation, idempotencyKey: change.idempotencyKey, data: change.data });
      return { remoteId, remoteVersion: '1' };
    },
  };

  /** Like Oro's TwoWaySyncConnectorInterface: names its export job, and knows its entity. */
  const connector: Connector = {
    integrationType: 'acme',
    name: 'widget',
    getExportJobName: () => 'example_export',
    entity: { table: 'widgets', identifier: 'id', columns: ['id', 'name', 'price_cents'] },
  };

  beforeAll(async () => {
    database = await createTestDatabase();
    db = database.app;
    await sql`create table widgets (id integer primary key, name text not null, price_cents integer not null)`.execute(db);
    await sql`insert into widgets (id, name, price_cents) values (1, 'sprocket', 250), (2, 'flange', 1200)`.execute(db);
    // The application's config, as its tidesync.config.ts would declare it: no demo anywhere.
    engine = await startTestEngine(database, {
      config: {
        connectors: [connector],
        processors: { YOUR_PROCESSOR: processor },
        writers: { YOUR_REVERSE_WRITER: writer },
        jobs: [ORO_JOBS_DIR],
      },
    });
    integration = await engine.client.upsertIntegration({ type: 'acme', name: uniqueName('acme') });
  });
  afterAll(async () => {
    await engine?.close();
    await database?.drop();
  });

  async function exportWidget(id: number) {
    const scheduled = await engine.client.scheduleExport({ integration: integration.name, connector: 'widget', id });
    if (!scheduled.scheduled) throw new Error(`export of ${id} refused: ${scheduled.reason}`);
    return { scheduled, outcome: await engine.client.waitForExport(scheduled) };
  }

  async function syncState(id: number) {
    return database.db
      .selectFrom('sync_state')
      .selectAll()
      .where('integration_id', '=', integration.id)
      .where('connector', '=', 'widget')
      .where('entity_id', '=', String(id))
      .executeTakeFirst();
  }

  it("should read each row by the connector's entity, process it with YOUR_PROCESSOR and push it with YOUR_REVERSE_WRITER", async () => {
    for (const id of [1, 2]) {
      const { scheduled, outcome } = await exportWidget(id);
      expect(scheduled.job).toBe('example_export');
      expect(outcome).toMatchObject({
        ok: true,
        status: 'completed',
        counters: { read: 1, processed: 1, written: 1, failed: 0 },
        written: [{ key: String(id), operation: 'create' }],
      });
    }

    expect(remote.map(({ operation, data }) => ({ operation, data }))).toEqual([
      { operation: 'create', data: { sku: 'W-1', label: 'SPROCKET', cents: 250 } },
      { operation: 'create', data: { sku: 'W-2', label: 'FLANGE', cents: 1200 } },
    ]);
    expect(remote.every((p) => p.idempotencyKey.length > 0)).toBe(true);
    expect(new Set(remote.map((p) => p.idempotencyKey)).size).toBe(2);

    for (const [i, id] of [1, 2].entries()) {
      expect(await syncState(id)).toMatchObject({
        remote_id: remote[i]?.remoteId,
        remote_version: '1',
        snapshot: remote[i]?.data,
        last_error: null,
        status: 'active',
      });
    }
  });

  it('should skip an unchanged row by its sync state, and push a changed one as an update', async () => {
    const before = remote.length;
    const unchanged = await exportWidget(1);
    expect(unchanged.outcome).toMatchObject({ ok: true, counters: { written: 0, skipped: 1 } });
    expect(remote).toHaveLength(before);

    await sql`update widgets set price_cents = 275 where id = 1`.execute(db);
    const changed = await exportWidget(1);
    expect(changed.outcome).toMatchObject({ ok: true, written: [{ key: '1', operation: 'update' }] });
    const state = await syncState(1);
    expect(remote.slice(before)).toEqual([
      {
        remoteId: state?.remote_id,
        operation: 'update',
        idempotencyKey: expect.any(String),
        data: { sku: 'W-1', label: 'SPROCKET', cents: 275 },
      },
    ]);
    expect(state?.snapshot).toEqual({ sku: 'W-1', label: 'SPROCKET', cents: 275 });
  });

  it("should capture changes of the connector's table, found through Oro's reader name", async () => {
    const installed = await installCapture(engine.runtime, { integration: integration.name, connector: 'widget' });
    expect(installed).toMatchObject({ table: 'public.widgets', identifier: ['id'], fields: ['name', 'price_cents'] });
    await sql`insert into widgets (id, name, price_cents) values (3, 'gasket', 90)`.execute(db);
    expect(await database.db.selectFrom('outbox').select(['entity_id', 'connector']).execute()).toEqual([
      { entity_id: 3, connector: 'widget' },
    ]);
  });
});
