import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Kysely, sql } from 'kysely';
import { resetSyncState } from '../src/store/sync-state';
import type { Change, Integration, RemoteRecord, WriteContext, Writer } from '../src/connectors/connector';
import { DemoContactWriter } from '../examples/demo/contact-writer';
import { type Demo, DEMO_TOKEN_ENV, setupDemo } from '../examples/demo/demo-setup';
import { TransientRemoteError } from '../src/errors';
import type { TidesyncDatabase } from '../src/store/schema';
import { upsertIntegration } from '../src/store/integrations';
import { installCapture } from '../src/outbox/capture';
import { createTestDatabase, startTestEngine, type TestEngine, uniqueName } from './helpers';

const STEP = (writer: string) => `
    title: Export contacts (test)
    type: export
    steps:
      export_contact:
        title: Push contact
        reader: entity.by_id
        processor: demo.contact_processor
        writer: ${writer}
        parameters: { table: contacts, identifier: id, columns: [id, first_name, last_name, email, phone, company] }
        write_back: { column: crm_id }
`;

/** Fails once right after the remote create succeeded: a crash before the local save. */
class CrashAfterCreateWriter implements Writer {
  readonly supportsPartialUpdate = true;
  crashes = 0;
  readonly #inner = new DemoContactWriter();
  async write(change: Change, context: WriteContext) {
    const result = await this.#inner.write(change, context);
    if (change.operation === 'create' && this.crashes === 0) {
      this.crashes += 1;
      throw new TransientRemoteError('simulated crash between the remote create and the local save');
    }
    return result;
  }
  read(remoteId: string, context: WriteContext) {
    return this.#inner.read(remoteId, context);
  }
}

/** Lets a remote user edit the record right after our read, once: our write then meets a newer version. */
class RacingWriter implements Writer {
  readonly supportsPartialUpdate = true;
  reads = 0;
  race: ((remoteId: string) => void) | undefined;
  readonly #inner = new DemoContactWriter();
  write(change: Change, context: WriteContext) {
    return this.#inner.write(change, context);
  }
  async read(remoteId: string, context: WriteContext): Promise<RemoteRecord | null> {
    const record = await this.#inner.read(remoteId, context);
    this.reads += 1;
    const race = this.race;
    this.race = undefined;
    race?.(remoteId);
    return record;
  }
}

describe('two-way correctness against the demo CRM', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: Kysely<TidesyncDatabase>;
  let demo: Demo;
  let engine: TestEngine;
  const crashing = new CrashAfterCreateWriter();
  const racing = new RacingWriter();
  const integrations: Record<'crash' | 'strict' | 'racy', Integration> = {} as never;

  beforeAll(async () => {
    database = await createTestDatabase();
    db = database.db;
    const jobs = await mkdtemp(path.join(tmpdir(), 'tidesync-jobs-'));
    await writeFile(
      path.join(jobs, 'test.yaml'),
      `jobs:\n  crash_contact_export:${STEP('test.crashing_writer')}\n  strict_contact_export:${STEP('demo.contact_writer')}\n  racy_contact_export:${STEP('test.racing_writer')}`,
    );
    engine = await startTestEngine(database, {
      jobs: [jobs],
      register: (connectors, services) => {
        connectors.register({ integrationType: 'demo_crash', name: 'contact', getExportJobName: () => 'crash_contact_export' });
        connectors.register({
          integrationType: 'demo_strict',
          name: 'contact',
          getExportJobName: () => 'strict_contact_export',
          fieldRules: { email: 'remote' },
          onRemoteMissing: 'mark_removed',
        });
        connectors.register({ integrationType: 'demo_racy', name: 'contact', getExportJobName: () => 'racy_contact_export' });
        services.register('writer', 'test.crashing_writer', crashing);
        services.register('writer', 'test.racing_writer', racing);
      },
    });
    demo = await setupDemo({ db: database.app, client: engine.client, contacts: 30, integrationName: uniqueName('demo') });
    for (const [kind, type] of [
      ['crash', 'demo_crash'],
      ['strict', 'demo_strict'],
      ['racy', 'demo_racy'],
    ] as const) {
      integrations[kind] = await upsertIntegration(db, {
        type,
        name: uniqueName(kind),
        transport: { baseUrl: demo.remote.url },
        secretRef: `env:${DEMO_TOKEN_ENV}`,
      });
    }
  });
  afterAll(async () => {
    await engine?.close();
    await demo?.remote.stop();
    await database?.drop();
  });

  async function exportContact(integration: Integration, id: number) {
    const scheduled = await engine.client.scheduleExport({ integration: integration.name, connector: 'contact', id });
    const outcome = await engine.client.waitForExport(scheduled);
    if (!outcome.ok) throw new Error(`export of ${id} failed: ${outcome.error}`);
    return outcome;
  }
  const state = (integration: Integration, id: number) =>
    db
      .selectFrom('sync_state')
      .selectAll()
      .where('integration_id', '=', integration.id)
      .where('entity_id', '=', String(id))
      .executeTakeFirstOrThrow();
  const remoteOf = async (integration: Integration, id: number) => demo.crm.get((await state(integration, id)).remote_id as string);
  const setPriority = (integration: Integration, syncPriority: 'local' | 'remote') =>
    upsertIntegration(db, { ...integration, syncPriority, transport: { ...integration.transport }, secretRef: integration.secretRef });

  it('should create first, update later, and write the remote id back without exporting again', async () => {
    await installCapture(engine.runtime, { integration: demo.integration.name, connector: 'contact', fields: ['phone', 'crm_id'] });
    await db.deleteFrom('outbox').execute();
    const first = await exportContact(demo.integration, 1);
    expect(first.written).toEqual([{ key: '1', remoteId: expect.any(String), operation: 'create' }]);
    const remoteId = first.written[0]?.remoteId;
    const local = await sql<{ crm_id: string }>`select crm_id from contacts where id = 1`.execute(database.app);
    expect(local.rows[0]?.crm_id).toBe(remoteId);
    // The write-back ran with the origin marker: the capture trigger (watching crm_id) ignored it.
    expect(await db.selectFrom('outbox').selectAll().execute()).toEqual([]);

    await sql`update contacts set phone = '+1 555 0001' where id = 1`.execute(database.app);
    const second = await exportContact(demo.integration, 1);
    expect(second.written).toEqual([{ key: '1', remoteId, operation: 'update' }]);
    expect(demo.remote.contacts().filter((c) => c.email === 'ada.lovelace.0@example.com')).toHaveLength(1);
  });

  it('should leave exactly one remote record when a crash hits between the remote create and the local save', async () => {
    const outcome = await exportContact(integrations.crash, 2);
    expect(crashing.crashes).toBe(1);
    expect(outcome.written).toEqual([{ key: '2', remoteId: expect.any(String), operation: 'create' }]);
    expect(demo.remote.contacts().filter((c) => c.email === 'grace.lovelace.1@example.com')).toHaveLength(1);
    expect((await state(integrations.crash, 2)).remote_id).toBe(outcome.written[0]?.remoteId);
    expect(demo.remote.stats().replays).toBeGreaterThanOrEqual(1);
  });

  it('should make no remote call for an unchanged entity, even when its values are rewritten the same', async () => {
    await exportContact(demo.integration, 3);
    await sql`update contacts set phone = phone, company = company where id = 3`.execute(database.app);
    const before = demo.remote.stats().requests;
    const outcome = await exportContact(demo.integration, 3);
    expect(outcome.counters).toMatchObject({ written: 0, skipped: 1 });
    expect(outcome.warnings).toEqual(['export_contact: entity 3 skipped: unchanged since the last export']);
    expect(demo.remote.stats().requests).toBe(before);
  });

  it('should keep concurrent local and remote edits to different fields, sending only the local change', async () => {
    await exportContact(demo.integration, 4);
    const remoteId = (await state(demo.integration, 4)).remote_id as string;
    demo.remote.editAsRemoteUser(remoteId, { company: 'Edited Remotely' });
    await sql`update contacts set phone = 'edited locally' where id = 4`.execute(database.app);
    demo.remote.resetStats();
    const outcome = await exportContact(demo.integration, 4);
    expect(outcome.conflicts).toEqual([]);
    // One read of the current version, one PATCH of the changed field; no PUT of the whole record.
    expect(demo.remote.stats().byMethod).toEqual({ GET: 1, PATCH: 1 });
    expect(await demo.crm.get(remoteId)).toMatchObject({ company: 'Edited Remotely', phone: 'edited locally' });
  });

  it.each([
    ['local', 'edited locally', 'local'],
    ['remote', 'edited remotely', 'remote'],
  ] as const)('should follow sync priority %s for a field edited on both sides', async (priority, expected, winner) => {
    const id = priority === 'local' ? 5 : 6;
    await setPriority(integrations.strict, priority);
    await exportContact(integrations.strict, id);
    const remoteId = (await state(integrations.strict, id)).remote_id as string;
    demo.remote.editAsRemoteUser(remoteId, { phone: 'edited remotely' });
    await sql`update contacts set phone = 'edited locally' where id = ${id}`.execute(database.app);
    const outcome = await exportContact(integrations.strict, id);
    expect((await demo.crm.get(remoteId))?.phone).toBe(expected);
    expect(outcome.conflicts).toEqual([{ key: String(id), field: 'phone', winner, rule: 'priority' }]);
    const recorded = await db
      .selectFrom('conflict')
      .selectAll()
      .where('integration', '=', integrations.strict.name)
      .where('entity_id', '=', String(id))
      .execute();
    expect(recorded).toEqual([
      expect.objectContaining({ field: 'phone', local_value: 'edited locally', remote_value: 'edited remotely', winner, rule: 'priority' }),
    ]);
    const execution = await db
      .selectFrom('job_execution')
      .select('conflicts')
      .where('workflow_id', '=', `export/${integrations.strict.name}/contact/${id}`)
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow();
    expect(execution.conflicts).toEqual([{ key: String(id), field: 'phone', winner, rule: 'priority' }]);
  });

  it('should let a per-field rule override the priority', async () => {
    await setPriority(integrations.strict, 'local');
    await exportContact(integrations.strict, 7);
    const remoteId = (await state(integrations.strict, 7)).remote_id as string;
    demo.remote.editAsRemoteUser(remoteId, { email: 'remote@example.com', phone: 'remote phone' });
    await sql`update contacts set email = 'local@example.com', phone = 'local phone' where id = 7`.execute(database.app);
    const outcome = await exportContact(integrations.strict, 7);
    expect(await demo.crm.get(remoteId)).toMatchObject({ email: 'remote@example.com', phone: 'local phone' });
    expect(outcome.conflicts).toEqual([
      { key: '7', field: 'email', winner: 'remote', rule: 'field_rule' },
      { key: '7', field: 'phone', winner: 'local', rule: 'priority' },
    ]);
  });

  it('should not lose a remote edit that lands between our read and our write', async () => {
    await exportContact(integrations.racy, 8);
    const remoteId = (await state(integrations.racy, 8)).remote_id as string;
    racing.reads = 0;
    racing.race = (id) => demo.remote.editAsRemoteUser(id, { company: 'Raced In' });
    await sql`update contacts set phone = 'local during race' where id = 8`.execute(database.app);
    const outcome = await exportContact(integrations.racy, 8);
    expect(racing.reads).toBe(2); // the conditional write failed (412), so it read and merged again
    expect(await demo.crm.get(remoteId)).toMatchObject({ company: 'Raced In', phone: 'local during race' });
    expect(outcome.written).toEqual([{ key: '8', remoteId, operation: 'update' }]);
  });

  it('should recreate a record deleted on the remote when the connector says recreate', async () => {
    await exportContact(demo.integration, 9);
    const oldId = (await state(demo.integration, 9)).remote_id as string;
    await demo.crm.delete(oldId, { idempotencyKey: 'test-remote-delete-9' });
    await sql`update contacts set phone = 'after remote delete' where id = 9`.execute(database.app);
    const outcome = await exportContact(demo.integration, 9);
    const newId = (await state(demo.integration, 9)).remote_id as string;
    expect(newId).not.toBe(oldId);
    expect(outcome.warnings).toContain(`export_contact: entity 9: remote record ${oldId} was gone; created it again as ${newId}`);
    expect(await demo.crm.get(newId)).toMatchObject({ phone: 'after remote delete' });
  });

  it('should mark a record deleted on the remote as remote-removed, skip it, and export it again after a reset', async () => {
    await exportContact(integrations.strict, 10);
    const oldId = (await state(integrations.strict, 10)).remote_id as string;
    await demo.crm.delete(oldId, { idempotencyKey: 'test-remote-delete-10' });
    await sql`update contacts set phone = 'after remote delete' where id = 10`.execute(database.app);
    await exportContact(integrations.strict, 10);
    expect(await state(integrations.strict, 10)).toMatchObject({ status: 'remote_removed', remote_id: oldId });

    await sql`update contacts set phone = 'still removed' where id = 10`.execute(database.app);
    const requests = demo.remote.stats().requests;
    const skipped = await exportContact(integrations.strict, 10);
    expect(skipped.warnings[0]).toMatch(/removed on the remote; not exported until `tidesync reset .* contact 10`/);
    expect(demo.remote.stats().requests).toBe(requests);

    expect(await resetSyncState(db, { integrationId: integrations.strict.id, connector: 'contact' }, '10')).toBe(true);
    const again = await exportContact(integrations.strict, 10);
    expect(again.written).toEqual([{ key: '10', remoteId: expect.any(String), operation: 'create' }]);
    expect(await remoteOf(integrations.strict, 10)).toMatchObject({ phone: 'still removed' });
  });

  it('should record a tombstone for a local delete when the writer cannot delete', async () => {
    const created = await exportContact(integrations.crash, 11);
    const remoteId = created.written[0]?.remoteId as string;
    await sql`delete from contacts where id = 11`.execute(database.app);
    const outcome = await exportContact(integrations.crash, 11);
    expect(outcome.warnings).toEqual(['export_contact: entity 11 was deleted locally; recorded a tombstone (the writer cannot delete)']);
    expect(await state(integrations.crash, 11)).toMatchObject({ status: 'tombstone', remote_id: remoteId });
    expect(await demo.crm.get(remoteId)).not.toBeNull();
  });
});
