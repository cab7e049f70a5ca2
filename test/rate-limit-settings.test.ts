/**
 * Declaring an integration's rate limits the ways users do (the CLI, the client), seeing them
 * (`integration list`, `status`, `client.rateLimits`), and bad values refused with an error that
 * names the flag or setting and the value.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ConfigurationError, formatRate, parseRate } from '../src';
import { recordThrottle } from '../src/store/rate-limits';
import { createTestDatabase, startTestEngine, type TestEngine, uniqueName } from './helpers';

const root = path.resolve(__dirname, '..');
const DEMO_CONFIG = path.join(root, '.build/examples/demo/tidesync.config.js');

describe('rate limit settings', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let engine: TestEngine;
  let env: NodeJS.ProcessEnv;
  const cli = (...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [path.join(root, 'bin/tidesync.js'), ...args], { cwd: root, env });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });

  beforeAll(async () => {
    database = await createTestDatabase();
    engine = await startTestEngine(database);
    env = { ...process.env, DATABASE_URL: database.url, TIDESYNC_CONFIG: DEMO_CONFIG, TIDESYNC_TASK_QUEUE: engine.taskQueue };
  });
  afterAll(async () => {
    await engine?.close();
    await database?.drop();
  });

  it('should parse rates as people write them and refuse the rest, naming the value', () => {
    expect([parseRate('20/s'), parseRate('20'), parseRate('600/min'), parseRate('0.5/s'), parseRate('3600/h')]).toEqual([
      20, 20, 10, 0.5, 1,
    ]);
    expect(() => parseRate('20/d', '--rate-limit')).toThrow(
      "--rate-limit '20/d' is not a rate: use requests per second or minute or hour, e.g. 20/s, 600/min, 0.5/s",
    );
    expect(() => parseRate('0/s')).toThrow("rate '0/s' must be more than zero");
    expect([formatRate(20), formatRate(1 / 3), formatRate(null)]).toEqual(['20/s', '0.333/s', 'unlimited']);
  });

  it('should set the limits with the CLI, list them, default to unlimited, and name a bad flag value', async () => {
    const name = uniqueName('rls');
    const set = await cli('integration', 'set', name, '--type', 'demo', '--rate-limit', '300/min', '--max-concurrent', '4');
    expect(set.stderr).toBe('');
    expect(JSON.parse(set.stdout)).toMatchObject({ name, rateLimit: { requestsPerSecond: 5, maxConcurrent: 4 } });
    expect((await cli('integration', 'list')).stdout).toContain(`rate-limit=5/s max-concurrent=4`);
    const listed = JSON.parse((await cli('integration', 'list', '--json')).stdout) as Array<Record<string, unknown>>;
    expect(listed.find((i) => i['name'] === name)).toMatchObject({
      rateLimit: { requestsPerSecond: 5, maxConcurrent: 4 },
      limiter: { currentRate: 5, pausedUntil: null, throttles: 0 },
    });

    // `integration set` sets every setting: one left out is back to its default, unlimited.
    expect((await cli('integration', 'set', name, '--type', 'demo')).code).toBe(0);
    expect((await cli('integration', 'list')).stdout).toContain('rate-limit=unlimited max-concurrent=unlimited');

    const bad = async (...args: string[]) => (await cli('integration', 'set', name, '--type', 'demo', ...args)).stderr.trim();
    expect(await bad('--rate-limit', 'fast')).toBe(
      "tidesync: --rate-limit 'fast' is not a rate: use requests per second or minute or hour, e.g. 20/s, 600/min, 0.5/s [configuration]",
    );
    expect(await bad('--rate-limit', '5000/s')).toBe("tidesync: --rate-limit '5000/s' is out of range: use 1/h to 1000/s [configuration]");
    expect(await bad('--max-concurrent', '2.5')).toBe(
      "tidesync: --max-concurrent '2.5' must be a whole number of requests from 1 to 1000, e.g. 4 [configuration]",
    );
    expect(await bad('--max-concurrent', '0')).toContain("--max-concurrent '0' must be a whole number");
  });

  it('should set the limits from the client, refuse bad ones naming the value, and report the limiter state', async () => {
    const name = uniqueName('rlc');
    const integration = await engine.client.upsertIntegration({
      name,
      type: 'demo',
      rateLimit: { requestsPerSecond: 8, maxConcurrent: 2 },
    });
    expect(integration.rateLimit).toEqual({ requestsPerSecond: 8, maxConcurrent: 2 });
    await expect(engine.client.upsertIntegration({ name, type: 'demo', rateLimit: { requestsPerSecond: -1 } })).rejects.toThrow(
      new ConfigurationError(
        `integration '${name}': rate limit -1 requests/s is not valid: use one an hour (0.000278) to 1000 a second, or null for unlimited`,
      ),
    );
    await expect(engine.client.upsertIntegration({ name, type: 'demo', rateLimit: { maxConcurrent: 1.5 } })).rejects.toThrow(
      `integration '${name}': max concurrent requests 1.5 is not valid: use a whole number from 1 to 1000, or null for unlimited`,
    );

    await recordThrottle(database.db, integration.id, 30_000);
    const [state] = await engine.client.rateLimits({ integration: name });
    expect(state).toMatchObject({
      integration: name,
      requestsPerSecond: 8,
      maxConcurrent: 2,
      currentRate: 4,
      throttles: 1,
      lastRetryAfterMs: 30_000,
    });
    const status = await cli('status', '--integration', name);
    expect(status.stdout).toMatch(
      new RegExp(
        `integration ${name}: rate limit 8/s, at most 2 in flight; now 4/s, climbing back after a 429; ` +
          `PAUSED until [\\d-]+ [\\d:]+ after a 429 \\(Retry-After 30s\\); 1 429s so far, last at [\\d-]+ [\\d:]+`,
      ),
    );
    await expect(engine.client.rateLimits({ integration: 'nope' })).rejects.toThrow("unknown integration 'nope'");
  });
});
