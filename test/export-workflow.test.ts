import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import { type Demo, DEMO_TOKEN_ENV, setupDemo } from '../examples/demo/demo-setup';
import type { TidesyncDatabase } from '../src/store/schema';
import { CONNECTOR_ATTRIBUTE, ENTITY_ID_ATTRIBUTE, INTEGRATION_ATTRIBUTE, STATUS_ATTRIBUTE } from '../src/search-attributes';
import { createTestDatabase, startTestEngine, type TestEngine, uniqueName } from './helpers';
import { localActivityMarkers } from './support/markers';

describe('export workflow against the demo CRM', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: Kysely<TidesyncDatabase>;
  let drop: () => Promise<void>;
  let demo: Demo;
  let engine: TestEngine;

  beforeAll(async () => {
    database = await createTestDatabase();
    ({ db, drop } = database);
    // Workflow ids include the integration name: a name of its own keeps this file's runs apart
    // from other test files sharing the Temporal server.
    engine = await startTestEngine(database);
    demo = await setupDemo({ db: database.app, client: engine.client, contacts: 12, integrationName: uniqueName('demo') });
  });
  afterAll(async () => {
    await engine?.close();
    await demo?.remote.stop();
    await drop?.();
  });
  beforeEach(() => demo.remote.clearFaults());

  async function exportContact(id: number) {
    const scheduled = await engine.client.scheduleExport({ integration: demo.integration.name, connector: 'contact', id });
    if (!scheduled.scheduled) throw new Error(`export of ${id} refused: ${scheduled.reason}`);
    return { scheduled, outcome: await engine.client.waitForExport(scheduled) };
  }

  async function execution(runId: string) {
    return db.selectFrom('job_execution').selectAll().where('run_id', '=', runId).executeTakeFirstOrThrow();
  }

  async function syncState(id: number) {
    return db
      .selectFrom('sync_state')
      .selectAll()
      .where('integration_id', '=', demo.integration.id)
      .where('entity_id', '=', String(id))
      .executeTakeFirst();
  }

  it('should create the contact remotely, record sync state and a completed execution', async () => {
    const { scheduled, outcome } = await exportContact(1);
    expect(outcome).toMatchObject({ ok: true, status: 'completed', counters: { read: 1, processed: 1, written: 1, failed: 0 } });
    expect(scheduled.workflowId).toBe(`export/${demo.integration.name}/contact/1`);
    expect(scheduled.job).toBe('demo_contact_export');

    const state = await syncState(1);
    const remote = await demo.crm.get(state?.remote_id ?? 'none');
    expect(remote).toMatchObject({ firstName: 'Ada', email: 'ada.lovelace.0@example.com' });
    expect(state?.remote_version).toBe(String(remote?.version));
    expect(state?.last_error).toBeNull();

    const record = await execution(scheduled.runId);
    expect(record).toMatchObject({ status: 'completed', job: 'demo_contact_export', written_count: 1, failed_step: null });
    expect(record.finished_at).toBeInstanceOf(Date);

    const description = await engine.temporal.workflow.getHandle(scheduled.workflowId, scheduled.runId).describe();
    expect(description.type).toBe('demo_contact_export');
    expect(description.typedSearchAttributes.get(INTEGRATION_ATTRIBUTE)).toBe(demo.integration.name);
    expect(description.typedSearchAttributes.get(CONNECTOR_ATTRIBUTE)).toBe('contact');
    expect(description.typedSearchAttributes.get(ENTITY_ID_ATTRIBUTE)).toBe('1');
    expect(description.typedSearchAttributes.get(STATUS_ATTRIBUTE)).toBe('completed');
    expect(await description.staticSummary()).toBe(`Export contact 1 to ${demo.integration.name}`);
  });

  it('should update after a local change and skip an unchanged entity without calling the remote', async () => {
    await exportContact(2);
    const before = demo.remote.stats().writes;
    const unchanged = await exportContact(2);
    expect(unchanged.outcome).toMatchObject({ ok: true, counters: { written: 0, skipped: 1 } });
    expect(demo.remote.stats().writes).toBe(before);

    await sql`update contacts set phone = '+44 20 7946 0000' where id = 2`.execute(database.app);
    const changed = await exportContact(2);
    expect(changed.outcome).toMatchObject({ ok: true, written: [{ key: '2', operation: 'update' }] });
    const state = await syncState(2);
    expect((await demo.crm.get(state?.remote_id ?? 'none'))?.phone).toBe('+44 20 7946 0000');
    expect(demo.remote.contacts().filter((c) => c.email === 'grace.lovelace.1@example.com')).toHaveLength(1);
  });

  it('should retry transient 5xx failures with backoff and write exactly once', async () => {
    demo.remote.injectFault({ kind: '5xx', status: 503, count: 2, method: 'POST' });
    const { scheduled, outcome } = await exportContact(3);
    expect(outcome).toMatchObject({ ok: true, status: 'completed', counters: { written: 1 } });
    expect(demo.remote.stats().faultsServed).toBeGreaterThanOrEqual(2);
    expect(demo.remote.contacts().filter((c) => c.email === 'alan.lovelace.2@example.com')).toHaveLength(1);
    const attempts = await writeAttempts(scheduled.workflowId, scheduled.runId);
    expect(attempts.started).toBe(3);
  });

  it("should wait for the remote's Retry-After on a 429", async () => {
    demo.remote.injectFault({ kind: '429', retryAfterSeconds: 3, count: 1, method: 'POST' });
    const began = Date.now();
    const { scheduled, outcome } = await exportContact(4);
    const tookMs = Date.now() - began;
    expect(outcome).toMatchObject({ ok: true, counters: { written: 1 } });
    const attempts = await writeAttempts(scheduled.workflowId, scheduled.runId);
    expect(attempts.started).toBe(2);
    // The default first backoff is 1 s; only the remote's Retry-After explains an export of 3 s.
    expect(tookMs).toBeGreaterThanOrEqual(2900);
  });

  it('should fail a permanently rejected record without retrying and record the remote message', async () => {
    demo.remote.injectFault({ kind: '422', count: 1, method: 'POST', message: 'email domain is blocked' });
    const { scheduled, outcome } = await exportContact(5);
    expect(outcome).toMatchObject({ ok: true, status: 'completed_with_failures', counters: { written: 0, failed: 1 } });
    const attempts = await writeAttempts(scheduled.workflowId, scheduled.runId);
    expect(attempts.started).toBe(1);
    const record = await execution(scheduled.runId);
    expect(record.failed_count).toBe(1);
    expect(record.failures[0]?.message).toMatch(/email domain is blocked/);
    // Visible and queryable: the entity is `failed`, with the remote's message and the attempt.
    expect(await syncState(5)).toMatchObject({
      status: 'failed',
      attempts: 1,
      last_error: expect.stringMatching(/email domain is blocked/),
    });
    expect((await syncState(5))?.failed_at).toBeInstanceOf(Date);
  });

  it('should stop at a failed step and say which step failed and why', async () => {
    const token = process.env[DEMO_TOKEN_ENV];
    delete process.env[DEMO_TOKEN_ENV];
    try {
      const { scheduled, outcome } = await exportContact(6);
      expect(outcome.ok).toBe(false);
      expect(outcome.ok ? '' : outcome.error).toMatch(/step 'export_contact' failed: .*TIDESYNC_DEMO_CRM_TOKEN/);
      const record = await execution(scheduled.runId);
      expect(record).toMatchObject({ status: 'failed', failed_step: 'export_contact' });
      expect(record.error).toMatch(/environment variable 'TIDESYNC_DEMO_CRM_TOKEN', which is not set/);
    } finally {
      process.env[DEMO_TOKEN_ENV] = token;
    }
  });

  it('should report a missing entity as missing, not as a crash', async () => {
    const { outcome } = await exportContact(9999);
    expect(outcome).toMatchObject({ ok: true, status: 'completed', counters: { read: 0, skipped: 1 } });
    expect(outcome.ok && outcome.warnings).toEqual(['export_contact: entity 9999 not found']);
  });

  it('should reject an unknown integration or connector at the call', async () => {
    await expect(engine.client.scheduleExport({ integration: 'nope', connector: 'contact', id: 1 })).rejects.toThrow(
      `unknown integration 'nope' (configured: ${demo.integration.name})`,
    );
    await expect(engine.client.scheduleExport({ integration: demo.integration.name, connector: 'deal', id: 1 })).rejects.toThrow(
      "unknown connector 'deal' for integration type 'demo' (known: contact)",
    );
  });

  it('should keep the secret out of workflow history', async () => {
    const { scheduled } = await exportContact(7);
    const history = await engine.temporal.workflow.getHandle(scheduled.workflowId, scheduled.runId).fetchHistory();
    // Payloads are base64 in history: decode every one so the check sees what Temporal stores.
    const decoded: string[] = [];
    JSON.stringify(history, (key, value: unknown) => {
      if (key === 'data' && typeof value === 'string') decoded.push(Buffer.from(value, 'base64').toString('utf8'));
      return value;
    });
    const text = JSON.stringify(history) + decoded.join('\n');
    // The decoding works: the write's result (a local activity marker) is readable.
    expect(text).toContain('"written":[{"key":"7"');
    expect(text).not.toContain(process.env[DEMO_TOKEN_ENV]);
  });

  /**
   * Attempts of the write, read from the run's history. Passes run as local activities: the
   * marker of the write's last attempt carries that attempt's number.
   */
  async function writeAttempts(workflowId: string, runId: string): Promise<{ started: number }> {
    const history = await engine.temporal.workflow.getHandle(workflowId, runId).fetchHistory();
    return { started: localActivityMarkers(history).find((m) => m.activityType === 'writeStep')?.attempt ?? 0 };
  }
});
