/**
 * The codec in `tidesync dev`, as `npm run demo` runs it: the demo with `TIDESYNC_CODEC_KEY` set
 * exports through a worker that bundles its workflows itself (with the codec's failure converter),
 * leaves only ciphertext in Temporal, and starts a codec server; a dev server started for the Web
 * UI tells the UI to decode through it.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DEMO_TOKEN_ENV } from '../examples/demo/demo-setup';
import { seedContact } from '../examples/demo/local-contacts';
import { getFreePort } from '../src/stack/ports';
import { findTemporalCli } from '../src/stack/temporal-cli';
import { startTemporalDevServer } from '../src/stack/temporal-server';
import { createTestDatabase, uniqueName } from './helpers';
import { rawHistory } from './support/raw-history';

const root = path.resolve(__dirname, '..');
const DEMO_CONFIG = path.join(root, '.build/examples/demo/tidesync.config.js');
const INTEGRATION = uniqueName('demo');

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(root, 'bin/tidesync.js'), ...args], { cwd: root, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('the codec in tidesync dev', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let home: string;
  let connection: Connection;

  beforeAll(async () => {
    if (!existsSync(path.join(root, 'dist/cli.js')) || !existsSync(DEMO_CONFIG)) {
      throw new Error('dist/ or .build/ is missing: `npm test` builds them first (npm run build, npm run build:examples)');
    }
    database = await createTestDatabase();
    home = await mkdtemp(path.join(tmpdir(), 'tidesync-codec-dev-'));
    connection = await Connection.connect({ address: process.env['TEMPORAL_ADDRESS'] as string });
  });
  afterAll(async () => {
    await connection?.close();
    await database?.drop();
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('should run the demo with TIDESYNC_CODEC_KEY set: exports encrypted, and a codec server for the Web UI', async () => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DATABASE_URL: database.url,
      TIDESYNC_HOME: home,
      TIDESYNC_CONFIG: DEMO_CONFIG,
      TIDESYNC_TASK_QUEUE: `codec-dev-${path.basename(home)}`,
      TIDESYNC_CODEC_KEY: randomBytes(32).toString('base64'),
      [DEMO_TOKEN_ENV]: randomBytes(8).toString('hex'),
    };
    // The worker bundles the workflows itself, the way `npm run demo` does, not the test run's bundle.
    delete env['TIDESYNC_WORKFLOW_BUNDLE'];
    const run = await runCli(['dev', '--once', '--json', '--contacts', '4', '--no-faults', '--integration', INTEGRATION], env);
    expect(run.stderr).not.toMatch(/tidesync: /);
    expect(run.code).toBe(0);
    const summary = JSON.parse(run.stdout.trim().split('\n').pop() as string) as Record<string, unknown>;
    expect(summary).toMatchObject({ exported: 4, failed: 0, remoteMatchesLocal: true });
    expect(summary['codecServer']).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const raw = new Client({ connection });
    const workflowId = `export/${INTEGRATION}/contact/1`;
    const { runId } = await raw.workflow.getHandle(workflowId).describe();
    const history = await rawHistory(raw, workflowId, runId);
    const { email, last_name } = seedContact(0);
    expect(history.haystack).not.toContain(email);
    expect(history.haystack).not.toContain(last_name);
    // The input, each local activity's result and the run's result, all under the demo's key.
    expect(history.payloads.filter((p) => p.keyId === 'demo').length).toBeGreaterThanOrEqual(8);
  });

  it("should point a dev server's Web UI at the codec server", async () => {
    const cli = await findTemporalCli();
    if (cli.kind !== 'binary') throw new Error(`the tests need the temporal CLI binary; found ${cli.kind}`);
    const uiPort = await getFreePort();
    const server = await startTemporalDevServer({
      cli,
      ui: true,
      uiPort,
      uiCodecEndpoint: 'http://127.0.0.1:8888',
      logFile: path.join(home, 'temporal-ui.log'),
    });
    try {
      const settings = (await (await fetch(`${server.uiUrl}/api/v1/settings`)).json()) as { Codec?: { Endpoint?: string } };
      expect(settings.Codec?.Endpoint).toBe('http://127.0.0.1:8888');
    } finally {
      await server.stop();
    }
  });
});
