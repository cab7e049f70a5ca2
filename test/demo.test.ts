import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { DEMO_TOKEN_ENV } from '../examples/demo/demo-setup';
import { DemoCrmServer } from '../examples/demo/remote/crm-server';
import { createTestDatabase, uniqueName } from './helpers';

const root = path.resolve(__dirname, '..');
const TOKEN = 'demo-test-token';
// The demo is an application of the package: the CLI runs it through its (compiled) config file.
const DEMO_CONFIG = path.join(root, '.build/examples/demo/tidesync.config.js');
// Workflow ids include the integration name: one of its own keeps these runs apart from other files'.
const INTEGRATION = uniqueName('demo');

/** Runs the real command line (the compiled one, as users do) and collects its output. */
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

describe('the demo, end to end through the CLI', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    if (!existsSync(path.join(root, 'dist/cli.js')) || !existsSync(DEMO_CONFIG)) {
      throw new Error('dist/ or .build/ is missing: `npm test` builds them first (npm run build, npm run build:examples)');
    }
    database = await createTestDatabase();
    const home = await mkdtemp(path.join(tmpdir(), 'tidesync-home-'));
    env = {
      ...process.env,
      DATABASE_URL: database.url,
      TIDESYNC_HOME: home,
      TIDESYNC_CONFIG: DEMO_CONFIG,
      TIDESYNC_TASK_QUEUE: `demo-${path.basename(home)}`,
      [DEMO_TOKEN_ENV]: TOKEN,
    };
  });
  afterAll(async () => database?.drop());

  it('should export every seeded contact, with injected faults, so the remote equals local', async () => {
    const run = await runCli(['dev', '--once', '--json', '--contacts', '25', '--integration', INTEGRATION], env);
    expect(run.stderr).not.toMatch(/tidesync: /);
    expect(run.code).toBe(0);
    const lines = run.stdout.trim().split('\n');
    const summary = JSON.parse(lines[lines.length - 1] as string) as Record<string, unknown>;
    expect(summary).toMatchObject({ contacts: 25, exported: 25, failed: 0, skipped: 0, remoteMatchesLocal: true, faultsInjected: 4 });
    expect(summary['temporalAddress']).toBe(process.env['TEMPORAL_ADDRESS']);

    // A second run finds nothing changed: every contact is skipped, none written again.
    const again = await runCli(['dev', '--once', '--json', '--no-faults', '--integration', INTEGRATION], env);
    expect(again.code).toBe(0);
    const second = JSON.parse(again.stdout.trim().split('\n').pop() as string) as Record<string, unknown>;
    expect(second).toMatchObject({ contacts: 25, exported: 0, skipped: 25, failed: 0, remoteMatchesLocal: true });
  });

  it('should export by id, run the worker with its relay, capture changes, list runs and conflicts, and reset', async () => {
    // The demo CRM kept its data in TIDESYNC_HOME; serve it again and point the integration at it.
    const remote = await DemoCrmServer.start({ token: TOKEN, dataFile: path.join(env['TIDESYNC_HOME'] as string, 'demo-crm.json') });
    const worker = spawn(process.execPath, [path.join(root, 'bin/tidesync.js'), 'worker'], { cwd: root, env });
    try {
      const set = await runCli(
        [
          'integration',
          'set',
          INTEGRATION,
          '--type',
          'demo',
          '--transport',
          JSON.stringify({ baseUrl: remote.url }),
          '--secret-ref',
          `env:${DEMO_TOKEN_ENV}`,
        ],
        env,
      );
      expect(set.code).toBe(0);
      await sql`update contacts set company = 'Renamed Ltd' where id = 3`.execute(database.app);

      const exported = await runCli(['export', INTEGRATION, 'contact', '3', '999', '--json'], env);
      const lines = exported.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines).toEqual([
        expect.objectContaining({ id: '3', status: 'completed', written: 1 }),
        expect.objectContaining({ id: '999', status: 'completed', written: 0, skipped: 1, detail: 'export_contact: entity 999 not found' }),
      ]);
      const state = await database.db
        .selectFrom('sync_state')
        .select(['remote_id', 'last_error'])
        .where('entity_id', '=', '3')
        .executeTakeFirstOrThrow();
      expect({ state, remote: remote.contacts().find((c) => c.id === state.remote_id), requests: remote.stats().byMethod }).toMatchObject({
        state: { last_error: null },
        remote: { company: 'Renamed Ltd' },
      });

      const status = await runCli(['status', '--json', '--limit', '2'], env);
      const rows = JSON.parse(status.stdout) as Array<{ entity_ids: string[]; status: string }>;
      expect(rows.map((r) => r.entity_ids[0]).sort()).toEqual(['3', '999']);
      const table = await runCli(['status'], env);
      expect(table.stdout).toMatch(new RegExp(`demo_contact_export\\s+${INTEGRATION}\\s+contact\\s+3\\s+completed`));

      // Capture triggers + the relay inside `tidesync worker`: a plain UPDATE reaches the remote.
      const capture = await runCli(
        ['capture', 'install', '--integration', INTEGRATION, '--connector', 'contact', '--fields', 'phone'],
        env,
      );
      expect(capture.stdout).toMatch(/capturing public\.contacts .* updates of phone/);
      await sql`update contacts set phone = 'captured by the trigger' where id = 4`.execute(database.app);
      const remoteId4 = await database.db
        .selectFrom('sync_state')
        .select('remote_id')
        .where('entity_id', '=', '4')
        .executeTakeFirstOrThrow();
      const deadline = Date.now() + 30_000;
      while (remote.contacts().find((c) => c.id === remoteId4.remote_id)?.phone !== 'captured by the trigger' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(remote.contacts().find((c) => c.id === remoteId4.remote_id)?.phone).toBe('captured by the trigger');

      const conflicts = await runCli(['conflicts', '--json'], env);
      expect(JSON.parse(conflicts.stdout)).toEqual([]);
      const noState = await runCli(['reset', INTEGRATION, 'contact', '999'], env);
      expect({ code: noState.code, out: noState.stdout.trim() }).toEqual({
        code: 1,
        out: `${INTEGRATION}/contact/999 has no sync state: nothing to reset`,
      });
      const reset = await runCli(['reset', INTEGRATION, 'contact', '5'], env);
      expect(reset.code).toBe(0);
      expect(await database.db.selectFrom('sync_state').select('entity_id').where('entity_id', '=', '5').execute()).toEqual([]);

      const unknown = await runCli(['export', INTEGRATION, 'deal', '1'], env);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain("tidesync: unknown connector 'deal' for integration type 'demo' (known: contact) [configuration]");
    } finally {
      worker.kill('SIGTERM');
      await new Promise((resolve) => worker.once('close', resolve));
      await remote.stop();
    }
  });

  it('should only seed and serve with --no-export, saying how to export in bulk', async () => {
    const run = await runCli(['dev', '--once', '--json', '--no-export', '--integration', INTEGRATION], env);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain(
      `export them in another terminal with \`npx tidesync --config .build/examples/demo/tidesync.config.js export --all ${INTEGRATION} contact\``,
    );
    const summary = JSON.parse(run.stdout.trim().split('\n').pop() as string) as Record<string, unknown>;
    expect(summary).toMatchObject({ contacts: 25, seeded: 0, exported: null });
  });
});
