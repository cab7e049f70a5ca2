import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { compareRemoteWithLocal, type Demo, DEMO_TOKEN_ENV, setupDemo } from '../examples/demo/demo-setup';
import { createTestDatabase, startTestEngine, type TestEngine, uniqueName, waitFor } from './helpers';
import { DEMO_CONFIG, ROOT, runCli } from './support/cli';

const root = ROOT;

const jsonLines = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);

describe('failed records and the breaker through the CLI', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let engine: TestEngine;
  let demo: Demo;
  let env: NodeJS.ProcessEnv;
  let name: string;
  const cli = (...args: string[]) => runCli(args, env);

  beforeAll(async () => {
    if (!existsSync(path.join(root, 'dist/cli.js')) || !existsSync(DEMO_CONFIG)) {
      throw new Error('dist/ or .build/ is missing: `npm test` builds them first (npm run build, npm run build:examples)');
    }
    database = await createTestDatabase();
    // The worker runs in this process; the commands find its task queue, database and Temporal in env.
    engine = await startTestEngine(database);
    demo = await setupDemo({ db: database.app, client: engine.client, contacts: 6, integrationName: uniqueName('demo') });
    name = demo.integration.name;
    env = {
      ...process.env,
      DATABASE_URL: database.url,
      TIDESYNC_HOME: await mkdtemp(path.join(tmpdir(), 'tidesync-home-')),
      TIDESYNC_CONFIG: DEMO_CONFIG,
      TIDESYNC_TASK_QUEUE: engine.taskQueue,
    };
  });
  afterAll(async () => {
    await engine?.close();
    await demo?.remote.stop();
    await database?.drop();
  });
  beforeEach(() => demo.remote.clearFaults());

  it('should set the retry window and the breaker of an integration, and name a bad value', async () => {
    const set = await cli(
      ...['integration', 'set', name, '--type', 'demo', '--transport', JSON.stringify({ baseUrl: demo.remote.url })],
      ...['--secret-ref', `env:${DEMO_TOKEN_ENV}`, '--retry-window', '5s', '--probe-interval', '1s', '--breaker-threshold', '3'],
    );
    expect(set.code).toBe(0);
    expect(JSON.parse(set.stdout)).toMatchObject({ name, retryWindowMs: 5000, probeIntervalMs: 1000, breakerThreshold: 3 });
    const list = await cli('integration', 'list');
    expect(list.stdout).toContain('retry-window=5s probe-interval=1s breaker=healthy (trips after 3)');

    const bad = await cli('integration', 'set', name, '--type', 'demo', '--retry-window', '3x');
    expect({ code: bad.code, stderr: bad.stderr.trim() }).toEqual({
      code: 1,
      stderr: "tidesync: --retry-window '3x' is not a duration: use milliseconds or e.g. 30s, 15m, 24h, 3d, 1h30m [configuration]",
    });
  });

  it('should list what an outage left undelivered, show the integration degraded, and deliver it with retry-failed once the remote is back', async () => {
    const first = jsonLines((await cli('export', name, 'contact', '1', '2', '--json')).stdout);
    expect(first.map((l) => l['status'])).toEqual(['completed', 'completed']);
    await sql`update contacts set phone = 'changed during the outage' where id = 1`.execute(database.app);

    demo.remote.injectFault({ kind: '5xx', status: 503, count: 1_000_000 });
    const exporting = cli('export', name, 'contact', '1', '3', '--json'); // an update and a create
    await waitFor(
      'the breaker to trip',
      async () => (await engine.client.integrationHealth({ integration: name }))[0]?.state === 'degraded',
    );
    const degraded = await cli('status');
    expect(degraded.stdout).toMatch(
      new RegExp(
        `^integration ${name}: DEGRADED since [-0-9: ]+ \\(\\d+ failed calls in a row; last: demo crm failed .*\\(503\\): injected server error\\); ` +
          'exports wait, \\d+ probes so far, next probe at [-0-9: ]+$',
        'm',
      ),
    );

    const exported = await exporting;
    expect(exported.code).toBe(1);
    const gaveUp =
      /^(gave up after \d+ attempts in the 5s retry window|not written: the integration stayed degraded for the whole 5s retry window)/;
    for (const line of jsonLines(exported.stdout)) {
      expect(line).toMatchObject({ status: 'completed_with_failures', written: 0, failed: 1, detail: expect.stringMatching(gaveUp) });
    }
    const listed = JSON.parse((await cli('failures', '--json')).stdout) as Array<Record<string, unknown>>;
    expect(listed.map((f) => [f['integration'], f['connector'], f['key']])).toEqual(
      expect.arrayContaining([
        [name, 'contact', '1'],
        [name, 'contact', '3'],
      ]),
    );
    expect(listed).toHaveLength(2);
    for (const f of listed) expect(f).toMatchObject({ lastError: expect.stringMatching(gaveUp), failedAt: expect.any(String) });
    const text = await cli('failures', '--integration', name);
    expect(text.stdout).toMatch(new RegExp(`^${name}/contact/1\\tfailed [-0-9: ]+\\tattempts=\\d+\\t(gave up|not written)`, 'm'));

    demo.remote.clearFaults();
    const retried = await cli('retry-failed', '--integration', name, '--json');
    expect({ code: retried.code, stderr: retried.stderr }).toEqual({ code: 0, stderr: '' });
    expect(jsonLines(retried.stdout).map((l) => [l['id'], l['status'], l['written']])).toEqual(
      expect.arrayContaining([
        [`${name}/contact/1`, 'completed', 1],
        [`${name}/contact/3`, 'completed', 1],
      ]),
    );
    expect((await cli('failures')).stdout.trim()).toBe('no failed records');
    expect((await cli('status')).stdout).toMatch(new RegExp(`^integration ${name}: healthy, recovered [-0-9: ]+ after \\d+ probes$`, 'm'));
    expect(await compareRemoteWithLocal(demo, database.app, engine.client, [1, 2, 3])).toMatchObject({ matches: true });
    expect(demo.remote.contacts()).toHaveLength(3);
  });

  it("should list a rejected record with the remote's message, keep it failed until its data is fixed, then deliver it with retry-failed --id", async () => {
    await sql`update contacts set email = 'broken' where id = 5`.execute(database.app);
    const rejected = jsonLines((await cli('export', name, 'contact', '5', '--json')).stdout);
    const message = 'demo crm rejected POST /contacts (422): email "broken" is not a valid address';
    expect(rejected).toEqual([expect.objectContaining({ id: '5', status: 'completed_with_failures', failed: 1, detail: message })]);
    const listed = JSON.parse((await cli('failures', '--integration', name, '--connector', 'contact', '--json')).stdout) as unknown[];
    expect(listed).toEqual([expect.objectContaining({ key: '5', attempts: 1, lastError: message })]);

    const still = await cli('retry-failed', '--integration', name, '--connector', 'contact', '--id', '5', '--json');
    expect(still.code).toBe(1);
    expect(jsonLines(still.stdout)).toEqual([expect.objectContaining({ status: 'completed_with_failures', detail: message })]);

    await sql`update contacts set email = 'fixed.5@example.com' where id = 5`.execute(database.app);
    const fixed = await cli('retry-failed', '--integration', name, '--connector', 'contact', '--id', '5', '--json');
    expect(fixed.code).toBe(0);
    expect(jsonLines(fixed.stdout)).toEqual([expect.objectContaining({ id: `${name}/contact/5`, status: 'completed', written: 1 })]);
    expect(demo.remote.contacts().filter((c) => c.email === 'fixed.5@example.com')).toHaveLength(1);
    expect((await cli('retry-failed', '--integration', name)).stdout.trim()).toBe('no failed records to retry');

    const noScope = await cli('retry-failed', '--id', '5');
    expect({ code: noScope.code, stderr: noScope.stderr.trim() }).toEqual({
      code: 1,
      stderr: 'tidesync: failed records are picked by id within one integration and connector: give both with the ids [configuration]',
    });
  });
});
