/**
 * Rate limits kept by two worker processes together (`node bin/tidesync.js worker`, as operators
 * run it), for a bulk export and per-entity exports of one integration at once, checked from the
 * demo CRM's own request log: no second holds more requests than the limit (plus the one of
 * arrival jitter the README states), no more requests are ever in flight at the CRM than
 * `--max-concurrent`, and a 429 served to one worker holds back every worker until its Retry-After.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { DEMO_TOKEN_ENV } from '../examples/demo/demo-setup';
import { seedContacts } from '../examples/demo/local-contacts';
import type { CrmRequest } from '../examples/demo/remote/crm-requests';
import { DemoCrmServer } from '../examples/demo/remote/crm-server';
import { busiestSecond } from '../bench/ratelimit/request-log';
import { getFreePort } from '../src/stack/ports';
import { createTestDatabase, uniqueName, waitFor } from './helpers';

const root = path.resolve(__dirname, '..');
const CLI = path.join(root, 'bin/tidesync.js');
const DEMO_CONFIG = path.join(root, '.build/examples/demo/tidesync.config.js');
const TOKEN = 'rate-limit-test-token';
const INTEGRATION = uniqueName('ratelimit');

/** The limits under test, and what a 1 s window may hold beyond the rate (see the README: arrival jitter). */
const RATE = 10;
const MAX_CONCURRENT = 2;
const JITTER_TOLERANCE = 1;
/** Bulk rows (ids 1..BULK_ROWS, the `with_company` filter) and per-entity ids after them. */
const BULK_ROWS = 200;
const SINGLE_IDS = Array.from({ length: 80 }, (_, i) => BULK_ROWS + 1 + i);
/** Every CRM request takes this long (applied), so requests overlap and the concurrency limit matters. */
const REQUEST_MS = 100;
/** Requests in flight when a 429 is served still arrive, and the pause takes a moment to record. */
const PAUSE_GRACE_MS = 250;

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: root, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const lastJson = (out: string) => JSON.parse(out.trim().split('\n').pop() as string) as Record<string, unknown>;

/** Requests a second over the span from the `skip`-th arrival to the `skip`-th from last (leaving out the ramp up and the tail). */
function rateOf(requests: readonly CrmRequest[], skip = 0): number {
  const at = requests
    .map((r) => r.at)
    .sort((a, b) => a - b)
    .slice(skip, requests.length - skip);
  if (at.length < 2) return 0;
  return ((at.length - 1) * 1000) / ((at[at.length - 1] as number) - (at[0] as number));
}

/** The sum of a Prometheus series over its label sets. */
function total(text: string, name: string): number {
  return [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'gm'))].reduce((sum, m) => sum + Number(m[1]), 0);
}

interface WorkerProcess {
  readonly child: ChildProcess;
  readonly metricsUrl: string;
  log: string;
}

describe('rate limits shared by two worker processes', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let remote: DemoCrmServer;
  let env: NodeJS.ProcessEnv;
  const workers: WorkerProcess[] = [];

  const startWorker = async (): Promise<WorkerProcess> => {
    const port = await getFreePort();
    const child = spawn(process.execPath, [CLI, 'worker', '--no-relay', '--metrics-port', String(port)], { cwd: root, env });
    const worker: WorkerProcess = { child, metricsUrl: `http://127.0.0.1:${port}/metrics`, log: '' };
    child.stderr?.on('data', (d: Buffer) => (worker.log += d.toString()));
    workers.push(worker);
    await waitFor(
      'the worker to start',
      async () => worker.log.includes('metrics on') || (child.exitCode !== null && Promise.reject(new Error(worker.log))),
      60_000,
    );
    return worker;
  };
  const metrics = async (w: WorkerProcess) => (await fetch(w.metricsUrl)).text();
  const bulkStatus = async (workflowId: string) => {
    const out = await runCli(['bulk', 'status', workflowId, '--json'], env);
    return out.code === 0 ? lastJson(out.stdout) : {};
  };
  /** Starts a bulk export of the `with_company` rows and per-entity exports of SINGLE_IDS at once; waits for both. */
  const exportBoth = async (mode: 'changed' | 'all', singlesDone: () => boolean) => {
    const [bulk, singles] = await Promise.all([
      runCli(
        ['export', '--all', INTEGRATION, 'contact', '--filter', 'with_company', '--mode', mode, '--page-size', '10', '--no-wait', '--json'],
        env,
      ),
      runCli(['export', INTEGRATION, 'contact', ...SINGLE_IDS.map(String), '--no-wait', '--json'], env),
    ]);
    expect({ bulk: bulk.code, singles: singles.code, stderr: bulk.stderr + singles.stderr }).toEqual({ bulk: 0, singles: 0, stderr: '' });
    const { workflowId } = lastJson(bulk.stdout) as { workflowId: string };
    const done = await waitFor(
      'the bulk export to finish',
      async () => {
        const s = await bulkStatus(workflowId);
        return s['status'] === 'completed' && s;
      },
      120_000,
    );
    await waitFor('the per-entity exports to finish', async () => singlesDone(), 120_000);
    return done;
  };

  beforeAll(async () => {
    if (!existsSync(path.join(root, 'dist/cli.js')) || !existsSync(DEMO_CONFIG)) {
      throw new Error('dist/ or .build/ is missing: `npm test` builds them first (npm run build, npm run build:examples)');
    }
    database = await createTestDatabase();
    await seedContacts(database.app, BULK_ROWS + SINGLE_IDS.length);
    // The bulk export takes the rows with a company, the per-entity exports the others.
    await sql`update contacts set company = case when id <= ${BULK_ROWS} then coalesce(company, 'Acme') end`.execute(database.app);
    remote = await DemoCrmServer.start({ token: TOKEN });
    const home = await mkdtemp(path.join(tmpdir(), 'tidesync-home-'));
    env = {
      ...process.env,
      DATABASE_URL: database.url,
      TIDESYNC_HOME: home,
      TIDESYNC_CONFIG: DEMO_CONFIG,
      TIDESYNC_TASK_QUEUE: `rate-limit-${path.basename(home)}`,
      [DEMO_TOKEN_ENV]: TOKEN,
    };
    const set = await runCli(
      [
        ...['integration', 'set', INTEGRATION, '--type', 'demo', '--transport', JSON.stringify({ baseUrl: remote.url })],
        ...['--secret-ref', `env:${DEMO_TOKEN_ENV}`, '--rate-limit', `${RATE}/s`, '--max-concurrent', String(MAX_CONCURRENT)],
      ],
      env,
    );
    expect(set.stderr).toBe('');
    expect(lastJson(set.stdout)).toMatchObject({ rateLimit: { requestsPerSecond: RATE, maxConcurrent: MAX_CONCURRENT } });
    await Promise.all([startWorker(), startWorker()]);
    remote.injectFault({ kind: 'slow', delayMs: REQUEST_MS, apply: true, count: 1_000_000 });
  });
  afterAll(async () => {
    await Promise.all(
      workers.map(async (w) => {
        if (w.child.exitCode !== null) return;
        const closed = new Promise((resolve) => w.child.once('close', resolve));
        w.child.kill('SIGTERM');
        await closed;
      }),
    );
    await remote?.stop();
    await database?.drop();
  });

  it('should keep requests within the rate and the concurrency limit across both workers, for bulk and per-entity exports', async () => {
    remote.resetStats();
    const done = await exportBoth('changed', () => remote.contacts().length === BULK_ROWS + SINGLE_IDS.length);
    expect(done).toMatchObject({ done: BULK_ROWS, written: BULK_ROWS, failed: 0 });

    const requests = remote.requests();
    // 20 batches of 10 rows and 80 single creates, nothing retried.
    expect(requests.filter((r) => r.path === '/contacts/batch')).toHaveLength(BULK_ROWS / 10);
    expect(requests.filter((r) => r.path === '/contacts')).toHaveLength(SINGLE_IDS.length);
    const reached = rateOf(requests, 10);
    const busiest = busiestSecond(requests);
    console.log(
      `limit ${RATE}/s, ${MAX_CONCURRENT} in flight: ${requests.length} requests, ${rateOf(requests).toFixed(1)}/s first to last, ` +
        `${reached.toFixed(1)}/s without the first and last 10, ` +
        `busiest second ${busiest}, peak in flight ${remote.peakInFlight()}`,
    );
    expect(busiest).toBeLessThanOrEqual(RATE + JITTER_TOLERANCE);
    expect(remote.peakInFlight()).toBeLessThanOrEqual(MAX_CONCURRENT);
    // Held to the limit, not starved by it: the demand (two workers, 4 pages and 80 exports at once) is above it
    // (without limits, on a shared 2-core machine: about 25 requests in the busiest second).
    expect(reached).toBeGreaterThan(RATE * 0.7);
    // Both workers made remote calls, each through the limiter.
    const waits = await Promise.all(workers.map(async (w) => total(await metrics(w), 'tidesync_rate_limit_wait\\w*_count')));
    expect(waits.every((n) => n > 0)).toBe(true);
    expect(waits.reduce((a, b) => a + b, 0)).toBe(requests.length);

    const list = await runCli(['integration', 'list'], env);
    expect(list.stdout).toContain(`rate-limit=${RATE}/s max-concurrent=${MAX_CONCURRENT}`);
  });

  it('should hold back every worker after a 429 until its Retry-After, then resume at a cut rate', async () => {
    await sql`update contacts set first_name = first_name || 'x'`.execute(database.app);
    remote.resetStats();
    const throttledBefore = await Promise.all(workers.map(async (w) => total(await metrics(w), 'tidesync_remote_throttled\\w*')));
    const singlesWritten = () => {
      const writes = remote.requests().filter((r) => r.method === 'PATCH' && r.status === 200).length;
      return writes >= SINGLE_IDS.length;
    };
    const running = exportBoth('changed', singlesWritten);
    // Once the load is well under way, one request is answered 429 with a 2 s Retry-After.
    await waitFor('the load to build up', async () => remote.requests().length >= 40, 60_000);
    // Faults are taken first come first served: the 429 goes before the slow answers again.
    remote.clearFaults();
    remote.injectFault({ kind: '429', retryAfterSeconds: 2, count: 1 });
    remote.injectFault({ kind: 'slow', delayMs: REQUEST_MS, apply: true, count: 1_000_000 });
    const done = await running;
    expect(done).toMatchObject({ done: BULK_ROWS, written: BULK_ROWS, failed: 0 });

    const requests = remote.requests();
    const throttle = requests.find((r) => r.status === 429) as CrmRequest;
    expect(throttle).toBeDefined();
    const served = throttle.endedAt as number;
    const during = requests.filter((r) => r.at > served + PAUSE_GRACE_MS && r.at < served + 2_000);
    const after = requests.filter((r) => r.at >= served + 2_000 && r.at < served + 3_000);
    const inFlight = requests.filter((r) => r.at > served && r.at <= served + PAUSE_GRACE_MS);
    console.log(
      `429 served; ${inFlight.length} requests arrived within ${PAUSE_GRACE_MS} ms (already on their way), ` +
        `${during.length} during the rest of the 2 s pause, ${after.length} in the second after it (limit ${RATE}/s, cut to half)`,
    );
    expect(inFlight.length).toBeLessThanOrEqual(MAX_CONCURRENT);
    expect(during).toEqual([]);
    // It resumes, at about half the rate (climbing 5 % of the limit a second), not at the full limit.
    expect(after.length).toBeGreaterThan(0);
    expect(after.length).toBeLessThanOrEqual(Math.ceil(RATE * 0.55) + JITTER_TOLERANCE);
    expect(busiestSecond(requests)).toBeLessThanOrEqual(RATE + JITTER_TOLERANCE);
    expect(remote.peakInFlight()).toBeLessThanOrEqual(MAX_CONCURRENT);

    // One worker got the 429; the other was held back all the same (no request of either arrived meanwhile).
    const throttledAfter = await Promise.all(workers.map(async (w) => total(await metrics(w), 'tidesync_remote_throttled\\w*')));
    expect(throttledAfter.map((n, i) => n - (throttledBefore[i] as number)).sort()).toEqual([0, 1]);
    const status = await runCli(['status', '--integration', INTEGRATION], env);
    expect(status.stdout).toMatch(
      new RegExp(`integration ${INTEGRATION}: rate limit ${RATE}/s, at most ${MAX_CONCURRENT} in flight.*1 429s so far`),
    );
    for (const w of workers) expect(w.log).not.toMatch(/tidesync: /);
  });
});
