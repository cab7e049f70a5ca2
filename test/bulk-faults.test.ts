import type { Kysely } from 'kysely';
import { compareRemoteWithLocal, type Demo, setupDemo } from '../examples/demo/demo-setup';
import { seedContact } from '../examples/demo/local-contacts';
import type { TidesyncDatabase } from '../src/store/schema';
import { createTestDatabase, startTestEngine, type TestEngine, uniqueName } from './helpers';

const CONTACTS = 2500;
/** The contact whose batch item the CRM rejects (422); every other record must reach the CRM. */
const REJECTED_ID = 1234;

describe('bulk export with faults injected during the run', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let db: Kysely<TidesyncDatabase>;
  let demo: Demo;
  let engine: TestEngine;

  beforeAll(async () => {
    database = await createTestDatabase();
    db = database.db;
    engine = await startTestEngine(database);
    demo = await setupDemo({ db: database.app, client: engine.client, contacts: CONTACTS, integrationName: uniqueName('faults') });
    // A 2 s client timeout (so the slow batch times out quickly), waits of 1 s between checks,
    // and the breaker kept out of the way (its bound is breaker.test.ts's).
    await engine.client.upsertIntegration({
      type: 'demo',
      name: demo.integration.name,
      transport: { baseUrl: demo.remote.url, timeoutMs: 2000 },
      secretRef: demo.integration.secretRef,
      retryWindowMs: 120_000,
      probeIntervalMs: 1000,
      breakerThreshold: 1000,
    });
  });
  afterAll(async () => {
    await engine?.close();
    await demo?.remote.stop();
    await database?.drop();
  });

  it('should end with the remote equal to local and exactly the rejected record failed', async () => {
    const rejectedEmail = seedContact(REJECTED_ID - 1).email as string;
    demo.remote.resetStats();
    const batch = { method: 'POST', path: '/contacts/batch' };
    // In the order the batches meet them: two 503s, a 429, a batch that is applied only after the
    // client gave up on it (the "timed out, but written" case), twelve 502s in a row (three
    // attempts of each of the four pages in flight: the workflow waits on timers), one item refused.
    demo.remote.injectFault({ kind: '5xx', status: 503, count: 2, ...batch });
    demo.remote.injectFault({ kind: '429', retryAfterSeconds: 1, count: 1, ...batch });
    demo.remote.injectFault({ kind: 'slow', delayMs: 3000, apply: true, count: 1, ...batch });
    demo.remote.injectFault({ kind: '5xx', status: 502, count: 12, ...batch });
    demo.remote.injectFault({ kind: 'item-422', match: rejectedEmail, message: `email "${rejectedEmail}" is on a block list` });

    const started = await engine.client.startBulkExport({
      integration: demo.integration.name,
      connector: 'contact',
      pageSize: 200,
      parallelism: 4,
    });
    const result = await engine.client.waitForBulkExport(started.workflowId);

    expect(result).toMatchObject({
      status: 'completed_with_failures',
      done: CONTACTS,
      counters: { read: CONTACTS, written: CONTACTS - 1, failed: 1 },
      failures: [{ key: String(REJECTED_ID), code: 'remote_permanent', message: expect.stringContaining('is on a block list') }],
    });
    expect(demo.remote.faults()).toEqual([]);
    expect(demo.remote.stats().faultsServed).toBe(17);

    // Nothing doubled: one remote contact per local one, and the CRM applied each exactly once.
    const remote = demo.remote.contacts();
    expect(remote).toHaveLength(CONTACTS - 1);
    expect(new Set(remote.map((c) => c.email)).size).toBe(CONTACTS - 1);
    expect(Object.values(demo.remote.stats().writesByContact).every((n) => n === 1)).toBe(true);

    const comparison = await compareRemoteWithLocal(demo, database.app, engine.client);
    expect(comparison.mismatches).toEqual([{ id: REJECTED_ID, problem: 'never exported (no remote id)' }]);
    const failed = await engine.client.listFailures({ integration: demo.integration.name });
    expect(failed).toEqual([
      expect.objectContaining({ key: String(REJECTED_ID), lastError: expect.stringContaining('block list'), attempts: expect.any(Number) }),
    ]);

    // The page activities reported to the breaker: failures were counted, and the successes after them closed the streak.
    const [health] = await engine.client.integrationHealth({ integration: demo.integration.name });
    expect(health).toMatchObject({ state: 'healthy', consecutiveFailures: 0, lastFailureAt: expect.any(Date) });

    // The workflow waited out the longer outage on a durable timer, and asked the breaker first.
    const events = (await engine.temporal.workflow.getHandle(started.workflowId).fetchHistory()).events ?? [];
    expect(events.some((e) => e.timerStartedEventAttributes)).toBe(true);
    expect(events.some((e) => e.markerRecordedEventAttributes)).toBe(true);

    // retry-failed delivers the rejected record once the CRM takes it.
    const retried = await engine.client.retryFailed({ integration: demo.integration.name });
    expect(await Promise.all(retried.map((r) => engine.client.waitForExport(r)))).toEqual([
      expect.objectContaining({ ok: true, status: 'completed' }),
    ]);
    expect((await compareRemoteWithLocal(demo, database.app, engine.client)).matches).toBe(true);
    expect(await db.selectFrom('sync_state').select('status').where('status', '<>', 'active').execute()).toEqual([]);
  });
});
