import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Kysely, sql } from 'kysely';
import { DemoContactWriter } from '../examples/demo/contact-writer';
import { type Demo, DEMO_TOKEN_ENV, compareRemoteWithLocal, setupDemo } from '../examples/demo/demo-setup';
import type {
  BatchItemResult,
  Change,
  Entity,
  Integration,
  KeysetRange,
  ProcessResult,
  Processor,
  ReadResult,
  StepParameters,
  WriteContext,
} from '../src/connectors/connector';
import { EntityByIdReader } from '../src/connectors/readers/entity-by-id-reader';
import type { TidesyncDatabase } from '../src/store/schema';
import { upsertIntegration } from '../src/store/integrations';
import { createTestDatabase, startTestEngine, type TestEngine, uniqueName } from './helpers';

/**
 * Runs a hook once, after it read a range of rows holding a given contact: the moment a test makes
 * the app change that row, after the page read it and before the page takes its lock.
 */
class HookedReader extends EntityByIdReader {
  hook: { id: number; run: () => Promise<void> } | undefined;
  override async readRange(range: KeysetRange, parameters: StepParameters): Promise<ReadResult['found']> {
    const rows = await super.readRange(range, parameters);
    const hook = this.hook;
    if (hook && rows.some((row) => Number(row.entity['id']) === hook.id)) {
      this.hook = undefined;
      await hook.run();
    }
    return rows;
  }
}

/** Runs a hook once, inside `writeBatch` (so while the bulk page holds its entities' locks). */
class HookedWriter extends DemoContactWriter {
  hook: (() => Promise<void>) | undefined;
  override async writeBatch(changes: readonly Change[], context: WriteContext): Promise<BatchItemResult[]> {
    const hook = this.hook;
    this.hook = undefined;
    await hook?.();
    return super.writeBatch(changes, context);
  }
}

/** Maps a `tenant_contacts` row to the demo CRM's fields. */
class TenantContactProcessor implements Processor {
  process(entity: Entity): ProcessResult {
    return {
      kind: 'changeset',
      data: {
        firstName: String(entity['first_name']),
        lastName: `${String(entity['tenant'])}/${String(entity['code'])}`,
        email: String(entity['email']),
        phone: null,
        company: null,
      },
    };
  }
}

const JOBS = `jobs:
  race_contact_export:
    title: Export contacts (race test)
    type: export
    steps:
      export_contact:
        title: Push contact
        reader: test.hooked_reader
        processor: demo.contact_processor
        writer: test.hooked_writer
        parameters: { table: contacts, identifier: id, columns: [id, first_name, last_name, email, phone, company] }
  tenant_contact_export:
    title: Export tenant contacts (composite ids)
    type: export
    steps:
      export_contact:
        title: Push tenant contact
        reader: entity.by_id
        processor: test.tenant_processor
        writer: demo.contact_writer
        parameters: { table: tenant_contacts, identifier: [tenant, code], columns: [tenant, code, first_name, email] }
`;

describe('bulk export: no stale overwrite, composite ids', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: Kysely<TidesyncDatabase>;
  let demo: Demo;
  let engine: TestEngine;
  let race: Integration;
  let tenants: Integration;
  let reader: HookedReader;
  const writer = new HookedWriter();

  beforeAll(async () => {
    database = await createTestDatabase();
    db = database.db;
    await sql`create table tenant_contacts (tenant integer, code text, first_name text not null, email text not null, primary key (tenant, code))`.execute(
      database.app,
    );
    // 3 tenants; codes whose text order differs from their numeric order ('c10' < 'c9').
    await sql`insert into tenant_contacts select t, 'c' || n, 'Name ' || n, 't' || t || '.c' || n || '@example.com'
      from generate_series(1, 3) t, generate_series(1, 97) n`.execute(database.app);
    reader = new HookedReader(database.app);
    const jobs = await mkdtemp(path.join(tmpdir(), 'tidesync-jobs-'));
    await writeFile(path.join(jobs, 'race.yaml'), JOBS);
    engine = await startTestEngine(database, {
      jobs: [jobs],
      register: (connectors, services) => {
        connectors.register({ integrationType: 'demo_race', name: 'contact', getExportJobName: () => 'race_contact_export' });
        connectors.register({ integrationType: 'demo_tenant', name: 'contact', getExportJobName: () => 'tenant_contact_export' });
        services.register('reader', 'test.hooked_reader', reader);
        services.register('writer', 'test.hooked_writer', writer);
        services.register('processor', 'test.tenant_processor', new TenantContactProcessor());
      },
    });
    demo = await setupDemo({ db: database.app, client: engine.client, contacts: 300, integrationName: uniqueName('demo') });
    const settings = { transport: { baseUrl: demo.remote.url }, secretRef: `env:${DEMO_TOKEN_ENV}` };
    race = await upsertIntegration(db, { type: 'demo_race', name: uniqueName('race'), ...settings });
    tenants = await upsertIntegration(db, { type: 'demo_tenant', name: uniqueName('tenant'), ...settings });
  });
  afterAll(async () => {
    await engine?.close();
    await demo?.remote.stop();
    await database?.drop();
  });

  const remoteOf = async (integration: Integration, id: number) => {
    const state = await db
      .selectFrom('sync_state')
      .selectAll()
      .where('integration_id', '=', integration.id)
      .where('entity_id', '=', String(id))
      .executeTakeFirstOrThrow();
    return { state, remote: await demo.crm.get(state.remote_id as string) };
  };
  const bulk = async (integration: Integration, options: object = {}) =>
    engine.client.waitForBulkExport(
      (await engine.client.startBulkExport({ integration: integration.name, connector: 'contact', pageSize: 50, ...options })).workflowId,
    );

  it('should write the row as it is once the page holds its lock, when the app changed it after the page read it', async () => {
    await bulk(race);
    // The page reads row 42, then (before it takes the row's lock) the app changes it, enqueueing
    // nothing: only the bulk export can deliver it, and it must not deliver the row as it first read it.
    reader.hook = {
      id: 42,
      run: async () => void (await sql`update contacts set phone = 'changed after the page read it' where id = 42`.execute(database.app)),
    };
    await sql`update contacts set phone = 'before' where id = 42`.execute(database.app);
    const result = await bulk(race);
    expect(reader.hook).toBeUndefined();
    expect(result).toMatchObject({ status: 'completed', counters: { written: 1 } });
    const { state, remote } = await remoteOf(race, 42);
    expect(remote?.phone).toBe('changed after the page read it');
    expect(state.snapshot).toMatchObject({ phone: 'changed after the page read it' });
  });

  it('should make a per-entity export wait for the bulk write holding the lock, then write the newer row', async () => {
    await sql`update contacts set phone = 'bulk sees this' where id = 43`.execute(database.app);
    // Inside the batch (locks held, rows already read again): the app changes row 43 and exports it
    // at once. The per-entity write must wait for the lock and go last; without the lock it would go
    // first, and the batch would then overwrite it with the older row.
    let perEntity: Promise<unknown> | undefined;
    writer.hook = async () => {
      await sql`update contacts set phone = 'newest, exported by its own workflow' where id = 43`.execute(database.app);
      const scheduled = await engine.client.scheduleExport({ integration: race.name, connector: 'contact', id: 43 });
      perEntity = engine.client.waitForExport(scheduled);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    };
    const result = await bulk(race, { scope: { ids: [43] } });
    expect(result).toMatchObject({ status: 'completed', counters: { written: 1 } });
    expect(await perEntity).toMatchObject({ ok: true, status: 'completed', counters: { written: 1 } });
    const { state, remote } = await remoteOf(race, 43);
    expect(remote).toMatchObject({ phone: 'newest, exported by its own workflow', version: expect.any(Number) });
    expect(state.snapshot).toMatchObject({ phone: 'newest, exported by its own workflow' });
    expect(state.remote_version).toBe(String(remote?.version));
    expect(
      (await compareRemoteWithLocal(demo, database.app, { syncStates: (r) => engine.client.syncStates({ ...r, integration: race.name }) }))
        .matches,
    ).toBe(true);
  });

  it('should page a composite identifier in key order, across tenants, with nothing skipped or doubled', async () => {
    demo.remote.resetStats();
    const result = await bulk(tenants, { pageSize: 7, parallelism: 3 });
    expect(result).toMatchObject({ status: 'completed', done: 291, total: 291, pages: 42, counters: { written: 291, failed: 0 } });
    const states = await db.selectFrom('sync_state').select(['entity_id', 'remote_id']).where('integration_id', '=', tenants.id).execute();
    expect(states).toHaveLength(291);
    expect(states.map((s) => s.entity_id)).toContain('code=c10;tenant=2');
    const written = Object.values(demo.remote.stats().writesByContact);
    expect({ contacts: written.length, each: new Set(written) }).toEqual({ contacts: 291, each: new Set([1]) });

    await sql`update tenant_contacts set first_name = 'Renamed' where (tenant, code) in ((1, 'c97'), (2, 'c1'), (3, 'c50'))`.execute(
      database.app,
    );
    const again = await bulk(tenants, { pageSize: 13 });
    expect(again).toMatchObject({ counters: { written: 3, skipped: 288 } });
    const byIds = await bulk(tenants, {
      scope: {
        ids: [
          { tenant: 2, code: 'c1' },
          { tenant: 9, code: 'x' },
        ],
      },
      mode: 'all',
    });
    expect(byIds).toMatchObject({ done: 2, counters: { written: 1, skipped: 1 } });
  });
});
