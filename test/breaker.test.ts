import { compareRemoteWithLocal, type Demo, localContactIds, setupDemo } from '../examples/demo/demo-setup';
import { createTestDatabase, startTestEngine, type TestEngine, uniqueName, waitFor } from './helpers';

const ENTITIES = 50;
/** Test-sized: one probe per 2 s (30 s by default); trips after 5 failed calls in a row (10 by default). */
const PROBE_INTERVAL_MS = 2000;
const THRESHOLD = 5;
/** How long the breaker is watched while the remote keeps failing. */
const OUTAGE_MS = 20_000;
/** Timer and scheduling jitter allowed between two probes. */
const SLACK_MS = 300;

describe('circuit breaker per integration', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let demo: Demo;
  let engine: TestEngine;

  beforeAll(async () => {
    database = await createTestDatabase();
    engine = await startTestEngine(database);
    demo = await setupDemo({ db: database.app, client: engine.client, contacts: ENTITIES, integrationName: uniqueName('demo') });
    await engine.client.upsertIntegration({
      type: 'demo',
      name: demo.integration.name,
      transport: { baseUrl: demo.remote.url },
      secretRef: demo.integration.secretRef,
      retryWindowMs: 10 * 60_000, // longer than the test: every export is still waiting when the remote comes back
      probeIntervalMs: PROBE_INTERVAL_MS,
      breakerThreshold: THRESHOLD,
    });
  });
  afterAll(async () => {
    await engine?.close();
    await demo?.remote.stop();
    await database?.drop();
  });

  /** Times at which the demo CRM received requests, sampled from its counters every 20 ms. */
  function watchRequests(): { times: number[]; stop(): void } {
    const times: number[] = [];
    let seen = demo.remote.stats().requests;
    const timer = setInterval(() => {
      const now = demo.remote.stats().requests;
      for (; seen < now; seen++) times.push(Date.now());
    }, 20);
    return { times, stop: () => clearInterval(timer) };
  }

  it('should trip, bound the requests to one probe per interval whatever the number of waiting exports, then recover and drain them', async () => {
    const health = async () => (await engine.client.integrationHealth({ integration: demo.integration.name }))[0];
    demo.remote.injectFault({ kind: '5xx', status: 503, count: 1_000_000 }); // every request fails
    demo.remote.resetStats();
    const requests = watchRequests();
    const started = Date.now();
    const ids = await localContactIds(database.app);
    expect(ids).toHaveLength(ENTITIES);
    const scheduled = await engine.client.scheduleExports({ integration: demo.integration.name, connector: 'contact', ids });
    const outcomes = Promise.all(scheduled.map((s) => engine.client.waitForExport(s)));
    // Awaited below; if an assertion fails first, its late rejection must not land in another test file.
    outcomes.catch(() => undefined);

    const tripped = await waitFor('the breaker to trip', async () => ((await health())?.state === 'degraded' ? Date.now() : null), 30_000);
    // Writes already in flight when it tripped still fail: the first wave is at most one request per entity.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const wave = requests.times.length;
    expect(wave).toBeGreaterThanOrEqual(THRESHOLD);
    expect(wave).toBeLessThanOrEqual(ENTITIES + 2);

    const from = Date.now();
    const probesBefore = (await health())?.probes ?? 0;
    await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
    const during = requests.times.filter((t) => t >= from);
    const probes = ((await health())?.probes ?? 0) - probesBefore;
    // The bound: one probe per interval, so at most OUTAGE_MS / PROBE_INTERVAL_MS (+1) requests, not 50 exports' retries.
    expect(during.length).toBeLessThanOrEqual(Math.floor(OUTAGE_MS / PROBE_INTERVAL_MS) + 1);
    expect(during.length).toBeGreaterThanOrEqual(Math.floor(OUTAGE_MS / PROBE_INTERVAL_MS / 2));
    expect(Math.abs(probes - during.length)).toBeLessThanOrEqual(1);
    // Probes are spread over the outage, one per interval. (The times are sampled every 20 ms by
    // this process, so on a loaded machine a single gap can look short: the mean cannot.)
    const meanGap = ((during.at(-1) as number) - (during[0] as number)) / Math.max(during.length - 1, 1);
    expect(meanGap).toBeGreaterThanOrEqual(PROBE_INTERVAL_MS - SLACK_MS);
    expect(demo.remote.contacts()).toEqual([]);
    expect(await health()).toMatchObject({ state: 'degraded', lastError: expect.stringMatching(/\(503\): injected server error/) });

    // The waiting exports sleep on durable timers: no write activity is pending on their behalf.
    const described = await Promise.all(
      scheduled.slice(0, 10).map((s) => engine.temporal.workflow.getHandle(s.scheduled ? s.workflowId : '').describe()),
    );
    const pendingWrites = described.filter((d) => (d.raw.pendingActivities ?? []).length > 0).length;
    expect(pendingWrites).toBeLessThanOrEqual(1);

    demo.remote.clearFaults();
    const recovery = Date.now();
    const results = await outcomes;
    const drainedMs = Date.now() - recovery;
    expect(results).toEqual(
      Array(ENTITIES).fill(expect.objectContaining({ ok: true, status: 'completed', counters: expect.objectContaining({ written: 1 }) })),
    );
    expect(await health()).toMatchObject({ state: 'healthy', consecutiveFailures: 0, recoveredAt: expect.any(Date) });
    // Recovery is noticed by the next probe and every waiting export resumes at its next check.
    expect(drainedMs).toBeLessThan(4 * PROBE_INTERVAL_MS + 10_000);
    expect(await compareRemoteWithLocal(demo, database.app, engine.client)).toMatchObject({ matches: true, checked: ENTITIES });
    expect(demo.remote.contacts()).toHaveLength(ENTITIES);
    requests.stop();

    const perMinute = (during.length / OUTAGE_MS) * 60_000;
    console.log(
      `breaker: ${ENTITIES} exports, tripped after ${tripped - started} ms; first wave ${wave} requests; then ${during.length} requests ` +
        `in ${OUTAGE_MS / 1000} s (${perMinute.toFixed(1)}/min, bound ${60_000 / PROBE_INTERVAL_MS}/min), ${probes} probes, ` +
        `mean gap ${Math.round(meanGap)} ms; drained ${ENTITIES} exports ${drainedMs} ms after recovery`,
    );
  });
});
