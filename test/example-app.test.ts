/**
 * An application adopts tidesync the way a user would: `npm pack` the package, install the
 * tarball into a copy of examples/helpdesk outside the repo (so nothing resolves to the repo's
 * node_modules or sources), create the app's table, configure its integration and run its worker
 * with `npx tidesync`, then run the app's own code and watch its help desk receive the tickets.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type * as Jiti from 'jiti';
import type * as KyselyModule from 'kysely';
import type * as PgModule from 'pg';
import type * as TidesyncModule from 'tidesync';
import type * as App from '../examples/helpdesk/app';
import type * as Helpdesk from '../examples/helpdesk/remote/helpdesk-server';
import { createTestDatabase, type TestDatabase, waitFor } from '../src/testing';

const root = path.resolve(__dirname, '..');
const EXAMPLE = path.join(root, 'examples/helpdesk');
const TOKEN = 'helpdesk-test-token';
// Workflow ids include the integration name: one of its own keeps these runs apart from other files'.
const INTEGRATION = `helpdesk_${Date.now().toString(36)}`;
/** Packing builds dist/ and installing fetches the tarball's dependencies: minutes on a busy machine. */
const INSTALL_TIMEOUT_MS = 5 * 60_000;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * The environment a user's shell would have: without what jest or `npm test` set (npm_* would
 * steer the inner npm) and without the test run's prebuilt workflow bundle, so the installed
 * worker bundles its own workflows.
 */
function userEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(npm_|TIDESYNC_|JEST_)/i.test(key) && key !== 'INIT_CWD' && key !== 'NODE_ENV') env[key] = value;
  }
  return { ...env, ...extra };
}

function run(command: string, args: readonly string[], options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function expectSuccess(what: string, result: Run): void {
  if (result.code !== 0) throw new Error(`${what} exited with ${result.code}\n${result.stdout}\n${result.stderr}`);
}

/**
 * Stops a process started with `detached` (its own group: npx, its shell, the worker) with SIGTERM
 * and waits until every one of them is gone: `close` comes once the last holder of its stderr exits.
 */
async function stopGroup(child: ChildProcess, closed: Promise<unknown>): Promise<void> {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    // Already gone.
  }
  const killer = setTimeout(() => child.pid !== undefined && process.kill(-child.pid, 'SIGKILL'), 30_000);
  await closed;
  clearTimeout(killer);
}

describe('an application that installs tidesync from its packed tarball', () => {
  const seconds: Record<string, string> = {};
  const timed = async <T>(what: string, step: () => Promise<T>): Promise<T> => {
    const begin = performance.now();
    const value = await step();
    seconds[what] = `${((performance.now() - begin) / 1000).toFixed(1)} s`;
    return value;
  };
  let tmp: string;
  let app: string;
  let tarballFiles: string[];

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'tidesync-example-'));
    app = path.join(tmp, 'helpdesk');
    // `npm test` has just built dist/; prepack would rebuild it in place while other test files run
    // the compiled CLI, so the tarball is packed from that build (stale files are caught below).
    const packed = await timed('pack', () =>
      run('npm', ['pack', '--ignore-scripts', '--pack-destination', tmp, '--json'], {
        cwd: root,
        env: userEnv(),
        timeoutMs: INSTALL_TIMEOUT_MS,
      }),
    );
    expectSuccess('npm pack', packed);
    const [{ filename }] = JSON.parse(packed.stdout) as [{ filename: string }];
    const tarball = path.join(tmp, filename);
    const listing = await run('tar', ['-tzf', tarball], { cwd: tmp, env: userEnv() });
    expectSuccess('tar -tzf', listing);
    tarballFiles = listing.stdout.split('\n').filter((line) => line !== '');

    await cp(EXAMPLE, app, { recursive: true, filter: (source) => !source.includes(`${path.sep}node_modules`) });
    const installed = await timed('install', () =>
      run('npm', ['install', tarball, 'kysely', 'pg', '--no-audit', '--no-fund', '--prefer-offline'], {
        cwd: app,
        env: userEnv(),
        timeoutMs: INSTALL_TIMEOUT_MS,
      }),
    );
    expectSuccess('npm install', installed);
  }, INSTALL_TIMEOUT_MS * 2);

  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
    console.log(
      `example app timings: ${Object.entries(seconds)
        .map(([what, time]) => `${what} ${time}`)
        .join(', ')}`,
    );
  });

  it('should pack the compiled package only: dist, bin, README, no sources, tests or examples', () => {
    for (const file of [
      'dist/index.js',
      'dist/index.d.ts',
      'dist/cli.js',
      'dist/testing/index.js',
      'dist/testing/index.d.ts',
      'bin/tidesync.js',
    ]) {
      expect(tarballFiles).toContain(`package/${file}`);
    }
    const unexpected = tarballFiles.filter((file) => /^package\/(src|test|examples|bench)\//.test(file) || /\.test\.[jt]s$/.test(file));
    expect(unexpected).toEqual([]);
    // tsc never deletes: a compiled file whose source is gone would ship with the next pack.
    const stale = tarballFiles
      .filter((file) => /^package\/dist\/.*\.js$/.test(file))
      .filter((file) => !existsSync(path.join(root, 'src', file.slice('package/dist/'.length).replace(/\.js$/, '.ts'))));
    expect(stale).toEqual([]);
  });

  it('should ship source maps that carry their sources (src/ is not in the package)', async () => {
    const dist = path.join(app, 'node_modules/tidesync/dist');
    const maps = (await readdir(dist, { recursive: true })).filter((file) => file.endsWith('.js.map'));
    expect(maps.length).toBeGreaterThan(0);
    for (const file of maps) {
      const map = JSON.parse(await readFile(path.join(dist, file), 'utf8')) as { sources: string[]; sourcesContent?: Array<string | null> };
      expect({
        file,
        inline: map.sourcesContent?.length === map.sources.length && map.sourcesContent.every((c) => typeof c === 'string'),
      }).toEqual({ file, inline: true });
    }
  });

  it("should type-check the app against the installed package's declarations, tidesync/testing included", async () => {
    // The classic CommonJS setting (moduleResolution "node", as this repo uses), which ignores `exports`.
    // The app ships no types for node and pg: the repo's @types stand in for the ones it would install.
    await writeFile(
      path.join(app, 'types-probe.ts'),
      "import { createTestDatabase } from 'tidesync/testing';\nexport const probe = createTestDatabase;\n",
    );
    const tsconfig = {
      compilerOptions: {
        target: 'ES2022',
        module: 'commonjs',
        moduleResolution: 'node',
        strict: true,
        noEmit: true,
        esModuleInterop: true,
        typeRoots: [path.join(root, 'node_modules/@types')],
        types: ['node'],
        paths: { pg: [path.join(root, 'node_modules/@types/pg')] },
      },
      files: ['tidesync.config.ts', 'app.ts', 'remote/helpdesk-server.ts', 'types-probe.ts'],
    };
    await writeFile(path.join(app, 'tsconfig.probe.json'), JSON.stringify(tsconfig));
    const tsc = await run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.probe.json'], {
      cwd: app,
      env: userEnv(),
    });
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.code).toBe(0);
  });

  it('should refuse a config whose job names an unregistered writer, before connecting', async () => {
    const broken = path.join(tmp, 'broken');
    await cp(app, broken, { recursive: true, filter: (source) => !source.includes(`${path.sep}node_modules`) });
    await symlink(path.join(app, 'node_modules'), path.join(broken, 'node_modules'));
    const job = path.join(broken, 'jobs/helpdesk.yaml');
    await writeFile(job, (await readFile(job, 'utf8')).replace('writer: helpdesk.ticket_writer', 'writer: helpdesk.ticket_sender'));
    const begin = performance.now();
    // An unreachable database: had the worker tried to connect, the error would say so instead.
    const result = await run('npx', ['tidesync', 'worker'], {
      cwd: broken,
      env: userEnv({ DATABASE_URL: 'postgres://x@127.0.0.1:1/x', TEMPORAL_ADDRESS: '127.0.0.1:1' }),
      timeoutMs: 60_000,
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(path.join(broken, 'tidesync.config.ts'));
    expect(result.stderr).toContain("unknown writer 'helpdesk.ticket_sender' (known: helpdesk.ticket_writer)");
    expect(result.stderr).not.toMatch(/ECONNREFUSED|connect/i);
    expect(performance.now() - begin).toBeLessThan(30_000);
  });

  it(
    "should export the app's committed changes to its help desk, and nothing of a rolled-back one",
    async () => {
      // The app's own dependencies, and its TypeScript through the jiti the installed tidesync loads configs with
      // (its synchronous require: jest's sandbox has no dynamic import()).
      const appRequire = createRequire(path.join(app, 'package.json'));
      const { createJiti } = createRequire(appRequire.resolve('tidesync/package.json'))('jiti') as typeof Jiti;
      const jiti = createJiti(path.join(app, 'index.ts'));
      const { closeTicket, closeTicketWithPg, openTicket } = jiti(path.join(app, 'app.ts')) as typeof App;
      const { startHelpdeskServer } = jiti(path.join(app, 'remote/helpdesk-server.ts')) as typeof Helpdesk;
      const { enqueueExport } = appRequire('tidesync') as typeof TidesyncModule;
      const { Kysely, PostgresDialect } = appRequire('kysely') as typeof KyselyModule;
      const { Pool } = appRequire('pg') as typeof PgModule;

      const database: TestDatabase = await createTestDatabase(process.env['DATABASE_URL'] as string);
      const pool = new Pool({ connectionString: database.url, max: 2 });
      const db = new Kysely<App.HelpdeskDatabase>({ dialect: new PostgresDialect({ pool }) });
      const helpdesk = await startHelpdeskServer({ token: TOKEN });
      let worker: ChildProcess | undefined;
      let workerClosed: Promise<unknown> = Promise.resolve();
      let workerLog = '';
      try {
        // The application's own migration: tidesync never creates the app's tables (nor the demo's).
        await pool.query(await readFile(path.join(app, 'schema.sql'), 'utf8'));
        const env = userEnv({
          DATABASE_URL: database.url,
          TEMPORAL_ADDRESS: process.env['TEMPORAL_ADDRESS'] as string,
          TIDESYNC_TASK_QUEUE: `example-${INTEGRATION}`,
          TIDESYNC_HOME: path.join(tmp, 'home'),
          HELPDESK_TOKEN: TOKEN,
        });
        await mkdir(path.join(tmp, 'home'), { recursive: true });
        const set = await run(
          'npx',
          [
            'tidesync',
            'integration',
            'set',
            INTEGRATION,
            '--type',
            'helpdesk',
            '--transport',
            JSON.stringify({ baseUrl: helpdesk.url }),
            '--secret-ref',
            'env:HELPDESK_TOKEN',
          ],
          { cwd: app, env },
        );
        expectSuccess('tidesync integration set', set);

        // The worker finds tidesync.config.ts in its working directory, as in the README.
        await timed('worker start', () => {
          const started = spawn('npx', ['tidesync', 'worker'], { cwd: app, env, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
          worker = started;
          workerClosed = new Promise((resolve) => started.once('close', resolve));
          return new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`worker did not start within 180 s:\n${workerLog}`)), 180_000);
            started.stderr?.on('data', (d: Buffer) => {
              workerLog += d.toString();
              if (workerLog.includes('worker polling task queue')) {
                clearTimeout(timer);
                resolve();
              }
            });
            started.once('exit', (code) => {
              clearTimeout(timer);
              reject(new Error(`worker exited with ${code} before polling:\n${workerLog}`));
            });
          });
        });
        expect(workerLog).toContain('jobs: helpdesk_ticket_export');

        // First write fails with a 503: the writer's TransientRemoteError makes tidesync retry it.
        helpdesk.failNext(503);
        const remoteOf = (id: number) => [...helpdesk.tickets.values()].find((t) => t['externalRef'] === `ticket-${id}`);
        const printer = await timed('first export', async () => {
          const id = await openTicket(db, INTEGRATION, { subject: 'Printer on fire', priority: 4, requesterEmail: 'ada@example.com' });
          await waitFor('the help desk to receive the ticket', async () => remoteOf(id), 60_000);
          return id;
        });
        expect(remoteOf(printer)).toMatchObject({
          id: 'HD-1',
          version: 1,
          subject: 'Printer on fire',
          status: 'open',
          priority: 'urgent',
          requester: 'ada@example.com',
        });
        expect(helpdesk.writes.filter((w) => w.method === 'POST')).toHaveLength(2); // the 503, then the retry
        await waitFor(
          'the help desk id written back',
          async () =>
            (await db.selectFrom('tickets').select('helpdesk_id').where('id', '=', printer).executeTakeFirstOrThrow()).helpdesk_id,
        );

        // A ticket that exists but whose change (and export request) is rolled back: nothing may reach the help desk.
        const { id: untouched } = await db
          .insertInto('tickets')
          .values({ subject: 'Stays local', priority: 1 })
          .returning('id')
          .executeTakeFirstOrThrow();
        await expect(
          db.transaction().execute(async (trx) => {
            await trx.updateTable('tickets').set({ subject: 'Never exported' }).where('id', '=', untouched).execute();
            await enqueueExport(trx, { integration: INTEGRATION, connector: 'ticket', id: untouched });
            throw new Error('the application changed its mind');
          }),
        ).rejects.toThrow('the application changed its mind');

        // Closing, with kysely and with plain pg: both changes arrive as updates.
        const coffee = await openTicket(db, INTEGRATION, { subject: 'No coffee' });
        await closeTicket(db, INTEGRATION, coffee);
        await closeTicketWithPg(pool, INTEGRATION, printer);
        await waitFor(
          'both tickets closed on the help desk',
          async () => remoteOf(printer)?.['status'] === 'closed' && remoteOf(coffee)?.['status'] === 'closed',
          60_000,
        );
        expect(remoteOf(printer)).toMatchObject({ id: 'HD-1', version: 2, status: 'closed' });
        expect(remoteOf(coffee)).toMatchObject({ subject: 'No coffee', priority: 'normal', status: 'closed' });

        expect(helpdesk.writes.filter((w) => JSON.stringify(w.body).includes(`ticket-${untouched}`))).toEqual([]);
        const { rows } = await pool.query<{ entity_id: number }>('select entity_id from tidesync.outbox where integration = $1', [
          INTEGRATION,
        ]);
        expect(rows.map((r) => r.entity_id)).not.toContain(untouched);
        expect(new Set(rows.map((r) => r.entity_id))).toEqual(new Set([printer, coffee]));
      } finally {
        if (worker) await stopGroup(worker, workerClosed);
        await helpdesk.stop();
        await db.destroy();
        await database.drop();
      }
      // The worker shut down on SIGTERM without an error (npx itself just dies of the signal).
      expect(workerLog).not.toMatch(/^tidesync: |\[ERROR\]/m);
    },
    5 * 60_000,
  );
});
