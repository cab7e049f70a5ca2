/**
 * What an operator sees of a running worker: `tidesync worker --metrics-port` serves the SDK's
 * Prometheus metrics with tidesync's among them (the outbox lag moves as rows wait), `/healthz`
 * fails when a server is unreachable, `tidesync outbox` reports the backlog, and housekeeping
 * removes old dispatched and skipped rows but never a pending one.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { noopMetricMeter } from '@temporalio/common';
import { sql } from 'kysely';
import { DEMO_TOKEN_ENV, setupDemo } from '../examples/demo/demo-setup';
import { enqueueExports } from '../src/outbox/enqueue';
import { OutboxRelay } from '../src/outbox/relay';
import { createMetrics } from '../src/metrics/metrics';
import { startMetricsServer } from '../src/metrics/server';
import { getFreePort } from '../src/stack/ports';
import { openDatabases } from '../src/store/db';
import { createTestDatabase, startTestEngine, type TestEngine, uniqueName, waitFor } from './helpers';

const root = path.resolve(__dirname, '..');
const DEMO_CONFIG = path.join(root, '.build/examples/demo/tidesync.config.js');

function cli(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, [path.join(root, 'bin/tidesync.js'), ...args], { cwd: root, env });
}

async function output(child: ChildProcess): Promise<{ code: number | null; stdout: string }> {
  let stdout = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout })));
}

/** The value of an unlabelled Prometheus sample, or undefined when absent. */
function sample(text: string, name: string): number | undefined {
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text);
  return match ? Number(match[1]) : undefined;
}

describe('metrics, health and the outbox backlog', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let env: NodeJS.ProcessEnv;
  const integration = uniqueName('demo');

  beforeAll(async () => {
    database = await createTestDatabase();
    // The demo CRM's token: the worker process resolves the integration's secret reference from it.
    process.env[DEMO_TOKEN_ENV] ||= 'metrics-test-token';
    env = { ...process.env, DATABASE_URL: database.url, TIDESYNC_CONFIG: DEMO_CONFIG, TIDESYNC_TASK_QUEUE: uniqueName('metrics') };
  });
  afterAll(async () => database?.drop());

  it('should serve the SDK metrics and the outbox lag on --metrics-port, and move the lag as rows wait', async () => {
    const port = await getFreePort();
    // No relay: rows stay pending, so the lag can only grow.
    const worker = cli(['worker', '--no-relay', '--metrics-port', String(port)], env);
    let stderr = '';
    worker.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const base = `http://127.0.0.1:${port}`;
    try {
      await waitFor(
        'the worker to serve metrics',
        async () => stderr.includes('metrics on') || (worker.exitCode !== null && Promise.reject(new Error(stderr))),
        60_000,
      );
      const health = await fetch(`${base}/healthz`);
      expect({ status: health.status, body: await health.json() }).toEqual({
        status: 200,
        body: { status: 'ok', postgres: 'ok', temporal: 'ok' },
      });

      const before = await (await fetch(`${base}/metrics`)).text();
      expect(before).toMatch(/^temporal_\w+/m);
      expect(sample(before, 'tidesync_outbox_pending_rows')).toBe(0);

      await database.db.transaction().execute((trx) => enqueueExports(trx, { integration, connector: 'contact', ids: [1, 2, 3] }));
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const after = await (await fetch(`${base}/metrics`)).text();
      expect(sample(after, 'tidesync_outbox_pending_rows')).toBe(3);
      expect(sample(after, 'tidesync_outbox_oldest_pending_age')).toBeGreaterThanOrEqual(1);

      const outbox = await output(cli(['outbox', '--json'], env));
      expect(outbox.code).toBe(0);
      expect(JSON.parse(outbox.stdout)).toMatchObject({
        pending: 3,
        byConnector: [{ integration, connector: 'contact', pending: 3, oldestPendingSeconds: expect.any(Number) }],
      });

      // Exports through this worker: one written, one refused by the remote for good.
      const engine = await startTestEngine(database);
      const demo = await setupDemo({ db: database.app, client: engine.client, contacts: 3, integrationName: integration });
      try {
        expect((await output(cli(['export', integration, 'contact', '1'], env))).code).toBe(0);
        demo.remote.injectFault({ kind: '422', count: 1, method: 'POST' });
        expect((await output(cli(['export', integration, 'contact', '2'], env))).code).toBe(1);
      } finally {
        await engine.close();
        await demo.remote.stop();
      }
      const exported = await (await fetch(`${base}/metrics`)).text();
      const series = (name: string, labels: string) => new RegExp(`^${name}\\{[^}]*${labels}[^}]*\\} ([0-9.]+)$`, 'm').exec(exported)?.[1];
      expect({
        completed: series('tidesync_exports\\w*', `outcome="completed"`),
        withFailures: series('tidesync_exports\\w*', `outcome="completed_with_failures"`),
        written: series('tidesync_records\\w*', `outcome="written"`),
        failedRecords: series('tidesync_failed_records', `integration="${integration}"`),
        breaker: series('tidesync_breaker_degraded', `integration="${integration}"`),
        writes: series('tidesync_remote_write_latency\\w*_count', `integration="${integration}"`),
      }).toEqual({ completed: '1', withFailures: '1', written: '1', failedRecords: '1', breaker: '0', writes: '2' });
    } finally {
      worker.kill('SIGTERM');
      await new Promise((resolve) => worker.once('close', resolve));
    }
  });

  it('should fail /healthz, naming the server, when PostgreSQL cannot be reached', async () => {
    const engine: TestEngine = await startTestEngine(database);
    const unreachable = openDatabases('postgres://nobody@127.0.0.1:1/nothing', { max: 1 });
    const server = await startMetricsServer({
      tidesync: { store: unreachable.store, temporal: engine.temporal },
      metrics: createMetrics(noopMetricMeter),
      sdkMetricsUrl: 'http://127.0.0.1:1/metrics',
      port: 0,
      host: '127.0.0.1',
    });
    try {
      const health = await fetch(`${server.url}/healthz`);
      const body = (await health.json()) as Record<string, string>;
      expect({ status: health.status, ...body }).toMatchObject({ status: 'unavailable', temporal: 'ok' });
      expect(health.status).toBe(503);
      expect(body['postgres']).toMatch(/ECONNREFUSED/);
    } finally {
      await server.close();
      await unreachable.destroy();
      await engine.close();
    }
  });

  it('should remove dispatched and skipped rows past the retention, and never a pending one', async () => {
    await database.db.deleteFrom('outbox').execute();
    const old = sql<Date>`now() - interval '8 days'`;
    await database.db
      .insertInto('outbox')
      .values([
        { integration, connector: 'contact', entity_id: '1', status: 'dispatched', dispatched_at: old, created_at: old },
        {
          integration,
          connector: 'contact',
          entity_id: '2',
          status: 'skipped',
          skip_reason: 'disabled',
          dispatched_at: old,
          created_at: old,
        },
        { integration, connector: 'contact', entity_id: '3', status: 'dispatched', dispatched_at: sql<Date>`now() - interval '1 day'` },
        { integration, connector: 'contact', entity_id: '4', status: 'pending', created_at: old },
      ])
      .execute();
    const relay = new OutboxRelay({ db: database.db, databaseUrl: database.url, client: { streamExports: async () => [] } });
    expect(await relay.purgeOld()).toBe(2);
    const left = await database.db.selectFrom('outbox').select(['entity_id', 'status']).orderBy('id').execute();
    expect(left).toEqual([
      { entity_id: 3, status: 'dispatched' },
      { entity_id: 4, status: 'pending' },
    ]);
  });
});
