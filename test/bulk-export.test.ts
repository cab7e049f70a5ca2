import { type Kysely, sql } from 'kysely';
import type { temporal } from '@temporalio/proto';
import { compareRemoteWithLocal, type Demo, setupDemo } from '../examples/demo/demo-setup';
import { CONNECTOR_ATTRIBUTE, INTEGRATION_ATTRIBUTE, STATUS_ATTRIBUTE } from '../src/search-attributes';
import { DEFAULT_BULK_PAGE_SIZE, MIN_FITTED_BULK_PAGE_SIZE, fitPageSize } from '../src';
import type { TidesyncDatabase } from '../src/store/schema';
import { createTestDatabase, startTestEngine, type TestEngine, uniqueName } from './helpers';

const CONTACTS = 600;

describe('bulk export against the demo CRM', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: Kysely<TidesyncDatabase>;
  let demo: Demo;
  let engine: TestEngine;

  beforeAll(async () => {
    database = await createTestDatabase();
    db = database.db;
    engine = await startTestEngine(database);
    demo = await setupDemo({ db: database.app, client: engine.client, contacts: CONTACTS, integrationName: uniqueName('bulk') });
  });
  afterAll(async () => {
    await engine?.close();
    await demo?.remote.stop();
    await database?.drop();
  });
  beforeEach(() => demo.remote.clearFaults());

  const integration = () => demo.integration.name;
  const states = () => db.selectFrom('sync_state').selectAll().where('integration_id', '=', demo.integration.id).execute();

  it('should export every row in pages, with batched writes, so the remote equals local', async () => {
    demo.remote.resetStats();
    const started = await engine.client.startBulkExport({ integration: integration(), connector: 'contact', pageSize: 50, parallelism: 3 });
    expect(started.workflowId).toMatch(new RegExp(`^bulk/${integration()}/contact/\\d{4}-\\d\\d-\\d\\dT`));
    const result = await engine.client.waitForBulkExport(started.workflowId);
    expect(result).toMatchObject({
      status: 'completed',
      mode: 'changed',
      done: CONTACTS,
      total: CONTACTS,
      pages: CONTACTS / 50,
      counters: { read: CONTACTS, written: CONTACTS, skipped: 0, failed: 0 },
    });
    // Creates went out in batches of 100 (a page of 50 is one batch): no single-contact writes.
    expect(demo.remote.stats().byMethod).toEqual({ POST: CONTACTS / 50 });
    expect(demo.remote.contacts()).toHaveLength(CONTACTS);
    expect(await compareRemoteWithLocal(demo, database.app, engine.client)).toMatchObject({ matches: true, checked: CONTACTS });
    // The remote ids were written back into the rows, as the per-entity path does.
    const backed = await sql<{ n: string }>`select count(*) as n from contacts where crm_id is not null`.execute(database.app);
    expect(Number(backed.rows[0]?.n)).toBe(CONTACTS);

    const handle = engine.temporal.workflow.getHandle(started.workflowId);
    const description = await handle.describe();
    expect(description.type).toBe('bulkExport');
    expect(description.typedSearchAttributes.get(INTEGRATION_ATTRIBUTE)).toBe(integration());
    expect(description.typedSearchAttributes.get(CONNECTOR_ATTRIBUTE)).toBe('contact');
    expect(description.typedSearchAttributes.get(STATUS_ATTRIBUTE)).toBe('completed');
    expect(await description.staticSummary()).toBe(`Bulk export contact to ${integration()} (changed, all rows)`);
    // Entity data stays out of history: no contact's email appears in it.
    const events = (await handle.fetchHistory()).events ?? [];
    expect(JSON.stringify(events)).not.toContain('@example.com');
    // The first pages came planned with the count, and bulkBegin ran as a local activity: the
    // workflow task that ran it scheduled the first page, with no bulkPlan and no other task between.
    const activities = events.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
    expect(activities[0]).toBe('bulkPage');
    expect(activities).not.toContain('bulkBegin');
    const begun = events.findIndex((e) => localActivityType(e) === 'bulkBegin');
    const firstPage = events.findIndex((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'bulkPage');
    expect(begun).toBeGreaterThan(0);
    expect(firstPage).toBeGreaterThan(begun);
    expect(events.slice(begun, firstPage).filter((e) => e.workflowTaskCompletedEventAttributes)).toEqual([]);
    expect(activities.filter((name) => name === 'bulkPage')).toHaveLength(CONTACTS / 50);

    const record = await db.selectFrom('job_execution').selectAll().where('workflow_id', '=', started.workflowId).executeTakeFirstOrThrow();
    expect(record).toMatchObject({ status: 'completed', read_count: CONTACTS, written_count: CONTACTS, entity_ids: ['all'] });
    expect(record.finished_at).toBeInstanceOf(Date);
  });

  it('should write only what changed in mode changed, and every row again in mode all', async () => {
    await sql`update contacts set phone = 'changed ' || id where id in (3, 77, 301, 599)`.execute(database.app);
    demo.remote.resetStats();
    const changed = await engine.client.startBulkExport({ integration: integration(), connector: 'contact', pageSize: 100 });
    expect(await engine.client.waitForBulkExport(changed.workflowId)).toMatchObject({
      status: 'completed',
      counters: { read: CONTACTS, written: 4, skipped: CONTACTS - 4, failed: 0 },
    });
    expect(demo.remote.stats().writes).toBe(4);
    expect(await compareRemoteWithLocal(demo, database.app, engine.client, [3, 77, 301, 599])).toMatchObject({ matches: true });

    demo.remote.resetStats();
    const all = await engine.client.startBulkExport({ integration: integration(), connector: 'contact', mode: 'all', pageSize: 200 });
    expect(await engine.client.waitForBulkExport(all.workflowId)).toMatchObject({ status: 'completed', counters: { written: CONTACTS } });
    expect(demo.remote.stats()).toMatchObject({ writes: CONTACTS, byMethod: { POST: CONTACTS / 100 } });
    expect(demo.remote.contacts()).toHaveLength(CONTACTS);
  });

  it('should fit its pages to the rows counted when no page size is given, and keep a page size given', async () => {
    // Whole waves of 4 pages of one size: no page left to run alone at the end.
    const sizes = [10_000, 12_000, 100_000, 100_001].map((rows) => fitPageSize(rows, 4, DEFAULT_BULK_PAGE_SIZE));
    expect(sizes).toEqual([2_500, 1_500, 2_500, 2_273]);
    expect([fitPageSize(CONTACTS, 4, DEFAULT_BULK_PAGE_SIZE), fitPageSize(CONTACTS, 4, 100)]).toEqual([MIN_FITTED_BULK_PAGE_SIZE, 100]);
    const fitted = await engine.client.startBulkExport({ integration: integration(), connector: 'contact' });
    const description = await engine.temporal.workflow.getHandle(fitted.workflowId).describe();
    expect(await description.staticDetails()).toContain(`pages of up to ${DEFAULT_BULK_PAGE_SIZE} (fitted to the rows counted)`);
    // 600 rows: pages of 500 (without fitting, one page of 2,500).
    expect(await engine.client.waitForBulkExport(fitted.workflowId)).toMatchObject({ status: 'completed', done: CONTACTS, pages: 2 });
    // One page of all 600 rows, planned and written in two parts (500 and 100 rows, one lock scope each).
    demo.remote.resetStats();
    const given = await engine.client.startBulkExport({ integration: integration(), connector: 'contact', pageSize: 1_000, mode: 'all' });
    expect(await engine.client.waitForBulkExport(given.workflowId)).toMatchObject({
      status: 'completed',
      done: CONTACTS,
      pages: 1,
      counters: { read: CONTACTS, processed: CONTACTS, written: CONTACTS, skipped: 0, failed: 0 },
    });
    expect(demo.remote.stats()).toMatchObject({ writes: CONTACTS, byMethod: { POST: CONTACTS / 100 } });
  });

  it('should export only the rows of a named filter, or a list of ids', async () => {
    await sql`update contacts set company = 'Filtered ' || id where id <= 20`.execute(database.app);
    await sql`update contacts set company = null where id between 21 and 40`.execute(database.app);
    const withCompany = await sql<{ n: string }>`select count(*) as n from contacts where company is not null`.execute(database.app);
    const filtered = await engine.client.startBulkExport({
      integration: integration(),
      connector: 'contact',
      scope: { filter: 'with_company' },
    });
    const result = await engine.client.waitForBulkExport(filtered.workflowId);
    expect(result).toMatchObject({ status: 'completed', total: Number(withCompany.rows[0]?.n), counters: { written: 20 } });
    // Rows 21..40 lost their company but are outside the filter: still as before on the remote.
    expect((await compareRemoteWithLocal(demo, database.app, engine.client, [25])).matches).toBe(false);

    const byIds = await engine.client.startBulkExport({
      integration: integration(),
      connector: 'contact',
      scope: { ids: [21, 22, 24, 25, 9999] },
      pageSize: 2,
    });
    expect(await engine.client.waitForBulkExport(byIds.workflowId)).toMatchObject({
      status: 'completed',
      done: 5,
      pages: 3,
      counters: { written: 4, skipped: 1 },
    });
    expect(await compareRemoteWithLocal(demo, database.app, engine.client)).toMatchObject({ matches: false });
    await engine.client.waitForBulkExport(
      (await engine.client.startBulkExport({ integration: integration(), connector: 'contact' })).workflowId,
    );
    expect(await compareRemoteWithLocal(demo, database.app, engine.client)).toMatchObject({ matches: true });
    expect((await states()).every((s) => s.status === 'active')).toBe(true);
  });

  it('should refuse bad requests at the call, naming the value', async () => {
    const start = (request: object) => engine.client.startBulkExport({ integration: integration(), connector: 'contact', ...request });
    await expect(start({ scope: { filter: 'nope' } })).rejects.toThrow(
      "unknown filter 'nope' for connector 'contact' (declared in job 'demo_contact_export', step 'export_contact': with_company, with_phone)",
    );
    await expect(start({ pageSize: 0 })).rejects.toThrow('page size 0 is not valid: use a whole number from 1 to 10000');
    await expect(start({ parallelism: 1.5 })).rejects.toThrow('parallelism 1.5 is not valid');
    await expect(start({ mode: 'some' })).rejects.toThrow("bulk export mode 'some' is not valid: use changed or all");
    await expect(start({ scope: { ids: ['abc'] } })).rejects.toThrow(/entity id "abc" is not valid for column 'id'/);
    await expect(engine.client.startBulkExport({ integration: 'nope', connector: 'contact' })).rejects.toThrow(
      "unknown integration 'nope'",
    );
    await expect(start({ connector: 'deal' })).rejects.toThrow("unknown connector 'deal'");
  });
});

/** The activity type a local activity's marker event records (`core_local_activity`), if it is one. */
function localActivityType(event: temporal.api.history.v1.IHistoryEvent): string | undefined {
  const marker = event.markerRecordedEventAttributes;
  const data = marker?.markerName === 'core_local_activity' ? marker.details?.['data']?.payloads?.[0]?.data : undefined;
  return data ? (JSON.parse(Buffer.from(data).toString('utf8')) as { activity_type?: string }).activity_type : undefined;
}
