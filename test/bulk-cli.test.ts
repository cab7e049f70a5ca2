import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { DEMO_TOKEN_ENV } from '../examples/demo/demo-setup';
import { ensureContactsTable, seedContacts } from '../examples/demo/local-contacts';
import { DemoCrmServer } from '../examples/demo/remote/crm-server';
import { createTestDatabase, uniqueName, waitFor } from './helpers';

const root = path.resolve(__dirname, '..');
const CLI = path.join(root, 'bin/tidesync.js');
const DEMO_CONFIG = path.join(root, '.build/examples/demo/tidesync.config.js');
const TOKEN = 'bulk-cli-test-token';
const CONTACTS = 3000;
const INTEGRATION = uniqueName('bulkcli');

/** Runs the compiled command line, as users do, and collects its output. */
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

describe('bulk exports through the CLI, with a worker killed mid-run', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let remote: DemoCrmServer;
  let env: NodeJS.ProcessEnv;
  let worker: ChildProcess | undefined;
  let workerLog = '';

  const startWorker = () => {
    const child = spawn(process.execPath, [CLI, 'worker', '--no-relay'], { cwd: root, env });
    child.stderr?.on('data', (d: Buffer) => (workerLog += d.toString()));
    worker = child;
    return child;
  };
  const stopWorker = async (signal: NodeJS.Signals) => {
    const child = worker;
    worker = undefined;
    if (!child || child.exitCode !== null) return;
    const closed = new Promise((resolve) => child.once('close', resolve));
    child.kill(signal);
    await closed;
  };

  beforeAll(async () => {
    if (!existsSync(path.join(root, 'dist/cli.js')) || !existsSync(DEMO_CONFIG)) {
      throw new Error('dist/ or .build/ is missing: `npm test` builds them first (npm run build, npm run build:examples)');
    }
    database = await createTestDatabase();
    await ensureContactsTable(database.app);
    await seedContacts(database.app, CONTACTS);
    remote = await DemoCrmServer.start({ token: TOKEN });
    const home = await mkdtemp(path.join(tmpdir(), 'tidesync-home-'));
    env = {
      ...process.env,
      DATABASE_URL: database.url,
      TIDESYNC_HOME: home,
      TIDESYNC_CONFIG: DEMO_CONFIG,
      TIDESYNC_TASK_QUEUE: `bulk-cli-${path.basename(home)}`,
      [DEMO_TOKEN_ENV]: TOKEN,
    };
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
  });
  afterAll(async () => {
    await stopWorker('SIGTERM');
    await remote?.stop();
    await database?.drop();
  });

  it('should finish a bulk export whose worker was SIGKILLed mid-page, with nothing skipped and nothing doubled', async () => {
    startWorker();
    // Every batch takes 300 ms and is applied even when its client is gone: a kill lands mid-page,
    // possibly after the CRM applied a batch whose answer the dead worker never read.
    remote.injectFault({ kind: 'slow', delayMs: 300, apply: true, count: 1_000_000, method: 'POST', path: '/contacts/batch' });
    const started = await runCli(
      ['export', '--all', INTEGRATION, 'contact', '--page-size', '50', '--parallelism', '2', '--no-wait', '--json'],
      env,
    );
    expect(started.stderr).toBe('');
    const { workflowId } = lastJson(started.stdout) as { workflowId: string };
    expect(workflowId).toMatch(new RegExp(`^bulk/${INTEGRATION}/contact/`));

    // A query needs a worker: while none runs (after the kill), `bulk status` fails and is asked again.
    const status = async () => {
      const out = await runCli(['bulk', 'status', workflowId, '--json'], env);
      return out.code === 0 ? lastJson(out.stdout) : {};
    };
    const atKill = await waitFor(
      'a few pages before the kill',
      async () => {
        const s = await status();
        return Number(s['pages']) >= 4 && s;
      },
      60_000,
    );
    await stopWorker('SIGKILL');
    expect(Number(atKill['done'])).toBeLessThan(CONTACTS);

    startWorker();
    const done = await waitFor(
      'the export to end on the new worker',
      async () => {
        const s = await status();
        return s['status'] === 'completed' && s;
      },
      90_000,
    );
    expect(done).toMatchObject({ done: CONTACTS, total: CONTACTS, written: CONTACTS, failed: 0 });

    // Nothing skipped: every contact is on the CRM. Nothing doubled: the CRM applied each once
    // (a batch retried after the kill was answered from its idempotency record).
    const contacts = remote.contacts();
    expect(contacts).toHaveLength(CONTACTS);
    expect(new Set(contacts.map((c) => c.email)).size).toBe(CONTACTS);
    const writes = Object.values(remote.stats().writesByContact);
    expect({ contacts: writes.length, perContact: [...new Set(writes)] }).toEqual({ contacts: CONTACTS, perContact: [1] });
    console.log(
      `SIGKILL after ${String(atKill['done'])} of ${CONTACTS} rows; the CRM answered ${remote.stats().replays} retried items from its idempotency records`,
    );
    const synced = await sql<{
      n: string;
    }>`select count(*) as n from tidesync.sync_state where status = 'active' and remote_id is not null`.execute(database.app);
    expect(Number(synced.rows[0]?.n)).toBe(CONTACTS);
    remote.clearFaults();
  });

  it('should follow a bulk export with a progress bar, list it, and manage schedules', async () => {
    if (!worker) startWorker();
    await sql`update contacts set company = 'Changed Co' where id in (5, 6, 7)`.execute(database.app);
    const run = await runCli(['export', '--all', INTEGRATION, 'contact', '--page-size', '500', '--json'], env);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(new RegExp(`bulk export bulk/${INTEGRATION}/contact/\\S+ started`));
    expect(run.stderr).toMatch(/bulk export \[.*\] \d+% \d+\/3000 rows \| [\d.]+\/s \| ETA \S+ \| written \d+ skipped \d+ failed 0/);
    expect(lastJson(run.stdout)).toMatchObject({
      status: 'completed',
      mode: 'changed',
      done: CONTACTS,
      written: 3,
      skipped: CONTACTS - 3,
      failed: 0,
    });

    const list = await runCli(['bulk', 'list', '--integration', INTEGRATION, '--json'], env);
    expect(JSON.parse(list.stdout)).toHaveLength(2);
    const misuse = await runCli(['export', INTEGRATION, 'contact', '--filter', 'with_phone'], env);
    expect({ code: misuse.code, err: misuse.stderr.trim() }).toEqual({ code: 1, err: 'tidesync: --filter needs --all' });

    const set = await runCli(['schedule', 'set', INTEGRATION, 'contact', '--cron', '0 3 * * *', '--filter', 'with_phone', '--json'], env);
    expect(lastJson(set.stdout)).toMatchObject({ scheduleId: `bulk/${INTEGRATION}/contact`, when: 'cron 0 3 * * *', mode: 'changed' });
    const listed = await runCli(['schedule', 'list'], env);
    expect(listed.stdout).toContain(`bulk/${INTEGRATION}/contact\tcron 0 3 * * *\tchanged\tnext `);
    expect((await runCli(['schedule', 'remove', INTEGRATION, 'contact'], env)).code).toBe(0);
    expect((await runCli(['schedule', 'remove', INTEGRATION, 'contact'], env)).stdout).toContain('has no schedule');
    expect(workerLog).not.toMatch(/tidesync: /);
  });
});
