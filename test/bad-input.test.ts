/**
 * Bad input at the edge: each case below must fail at the call with a message that names the
 * problem and the value, quickly, and leave nothing stuck or half-written. (Config files and job
 * YAML have their own tables in config.test.ts and jobs.test.ts.)
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { sql } from 'kysely';
import { type Demo, DEMO_TOKEN_ENV, setupDemo } from '../examples/demo/demo-setup';
import { enqueueExport, enqueueExports } from '../src/outbox/enqueue';
import { OutboxRelay } from '../src/outbox/relay';
import { createTestDatabase, startTestEngine, type TestEngine, uniqueName, waitFor } from './helpers';

const root = path.resolve(__dirname, '..');
const DEMO_CONFIG = path.join(root, '.build/examples/demo/tidesync.config.js');
/** Every failure below must be reported within this time: never a hang. */
const QUICK_MS = 15_000;

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(root, 'bin/tidesync.js'), ...args], { cwd: root, env });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr, ms: Date.now() - started }));
  });
}

describe('bad input at the edge', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let engine: TestEngine;
  let demo: Demo;
  let env: NodeJS.ProcessEnv;
  const integration = uniqueName('demo');

  beforeAll(async () => {
    database = await createTestDatabase();
    engine = await startTestEngine(database);
    demo = await setupDemo({ db: database.app, client: engine.client, contacts: 5, integrationName: integration });
    env = { ...process.env, DATABASE_URL: database.url, TIDESYNC_CONFIG: DEMO_CONFIG };
  });
  afterAll(async () => {
    await engine?.close();
    await demo?.remote.stop();
    await database?.drop();
  });

  const outboxCount = async () =>
    Number(
      (
        await database.db
          .selectFrom('outbox')
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );

  describe('client calls', () => {
    it.each([
      ['a word for an integer key', 'abc', `entity id "abc" is not valid for column 'id' of public.contacts (integer): not an integer`],
      ['a fraction', 1.5, 'not an integer'],
      ['a number past the column type', '99999999999', 'out of range for integer'],
      ['a column that is not an identifier', { id: 1, tenant: 2 }, "names columns that are not identifiers of 'contacts': tenant"],
    ] as const)('should refuse %s before starting any workflow', async (_name, id, message) => {
      await expect(engine.client.scheduleExport({ integration, connector: 'contact', id: id as never })).rejects.toThrow(message);
      await expect(
        engine.temporal.workflow
          .getHandle(`export/${integration}/contact/${typeof id === 'object' ? 'id=1;tenant=2' : String(id)}`)
          .describe(),
      ).rejects.toThrow(/not found/i);
    });

    it.each([
      ['an unknown integration', { integration: 'nope', connector: 'contact', id: 1 }, `unknown integration 'nope' (configured: `],
      [
        'an unknown connector',
        { integration, connector: 'deal', id: 1 },
        `unknown connector 'deal' for integration type 'demo' (known: contact)`,
      ],
    ])('should name %s', async (_name, request, message) => {
      await expect(engine.client.scheduleExport(request)).rejects.toThrow(message);
    });

    it('should refuse an integration of an unknown type', async () => {
      await expect(engine.client.upsertIntegration({ type: 'shop', name: uniqueName('shop') })).rejects.toThrow(
        "unknown integration type 'shop' (known: demo)",
      );
    });

    it.each([
      ['an id of the wrong kind', { integration, connector: 'contact', id: true as never }, 'entity id true is not valid'],
      [
        'an empty integration',
        { integration: ' ', connector: 'contact', id: 1 },
        'integration " " is not valid: expected a non-empty string',
      ],
      ['an empty composite id', { integration, connector: 'contact', id: {} }, 'entity id {} is not valid'],
    ])('should refuse to enqueue %s, writing nothing', async (_name, request, message) => {
      const before = await outboxCount();
      await expect(database.db.transaction().execute((trx) => enqueueExport(trx, request))).rejects.toThrow(message);
      expect(await outboxCount()).toBe(before);
    });

    it('should refuse to enqueue no ids at all, and something that is not a transaction', async () => {
      await expect(
        database.db.transaction().execute((trx) => enqueueExports(trx, { integration, connector: 'contact', ids: [] })),
      ).rejects.toThrow('ids [] is not valid: expected a non-empty array');
      await expect(enqueueExport({} as never, { integration, connector: 'contact', id: 1 })).rejects.toThrow(
        'enqueueExport needs a kysely transaction or a pg client',
      );
    });
  });

  describe('the relay', () => {
    it('should skip an outbox row whose id cannot be a key, with the reason, and deliver the others of its batch', async () => {
      await database.db.deleteFrom('outbox').execute();
      await sql`select tidesync.enqueue_exports(${integration}, 'contact', '["abc", 1]'::jsonb)`.execute(database.app);
      const relay = new OutboxRelay({ db: database.db, databaseUrl: database.url, client: engine.client });
      expect(await relay.dispatchBatch()).toEqual({ claimed: 2, dispatched: 1, skipped: 1 });
      const rows = await database.db.selectFrom('outbox').select(['entity_id', 'status', 'skip_reason']).orderBy('id').execute();
      expect(rows).toEqual([
        { entity_id: 'abc', status: 'skipped', skip_reason: expect.stringContaining('not an integer') },
        { entity_id: 1, status: 'dispatched', skip_reason: null },
      ]);
    });
  });

  describe('the command line', () => {
    it.each([
      ['an id of the wrong type', ['export', 'INTEGRATION', 'contact', 'abc'], `entity id "abc" is not valid for column 'id'`],
      [
        'a transport that is not JSON',
        ['integration', 'set', 'x', '--type', 'demo', '--transport', '{oops'],
        `--transport "{oops" is not JSON`,
      ],
      ['a transport that is not an object', ['integration', 'set', 'x', '--type', 'demo', '--transport', '[1]'], 'must be a JSON object'],
      ['a priority that is no side', ['integration', 'set', 'x', '--type', 'demo', '--priority', 'sideways'], `'sideways' is invalid`],
      ['a negative limit', ['status', '--limit', '-1'], `'-1' is not a non-negative integer`],
      ['a missing argument', ['reset', 'demo', 'contact'], `missing required argument 'id'`],
      ['an unknown command', ['exprot'], `unknown command 'exprot'`],
      ['an empty composite id part', ['export', 'INTEGRATION', 'contact', '=1'], `has a part without a column name`],
    ])('should refuse %s with exit code 1', async (_name, args, message) => {
      const run = await runCli(
        args.map((a) => (a === 'INTEGRATION' ? integration : a)),
        env,
      );
      expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 1, stderr: expect.stringContaining(message) });
      expect(run.ms).toBeLessThan(QUICK_MS);
    });

    it.each([
      ['an unreachable DATABASE_URL', { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/nothing' }, /ECONNREFUSED 127\.0\.0\.1:1/],
      ['an unreachable TEMPORAL_ADDRESS', { TEMPORAL_ADDRESS: '127.0.0.1:1' }, /cannot connect to temporal at '127\.0\.0\.1:1'/],
    ])('should report %s within seconds', async (_name, overrides, message) => {
      const run = await runCli(['export', integration, 'contact', '1'], { ...env, ...overrides });
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(message);
      expect(run.ms).toBeLessThan(QUICK_MS);
    });
  });

  it('should fail a row too large for a Temporal payload with its size, and finish the run', async () => {
    await sql`update contacts set company = ${'x'.repeat(3 * 1024 * 1024)} where id = 3`.execute(database.app);
    const outcome = await engine.client.waitForExport(await engine.client.scheduleExport({ integration, connector: 'contact', id: 3 }));
    expect(outcome).toMatchObject({ ok: true, status: 'completed_with_failures', counters: { failed: 1, written: 0 } });
    if (outcome.ok)
      expect(outcome.failures[0]).toMatchObject({
        code: 'entity_too_large',
        message: expect.stringMatching(/^entity 3 is \d+ bytes as JSON, more than the 262144 bytes/),
      });
    const failures = await engine.client.listFailures({ integration });
    expect(failures).toEqual(
      expect.arrayContaining([expect.objectContaining({ key: '3', lastError: expect.stringContaining('bytes as JSON') })]),
    );
  });

  describe('remote responses', () => {
    let garbage: Server;
    let answer: { status: number; type: string; body: string } = { status: 200, type: 'text/html', body: '' };

    beforeAll(async () => {
      garbage = createServer((_req, res) => {
        res.writeHead(answer.status, { 'content-type': answer.type });
        res.end(answer.body);
      });
      await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', resolve));
    });
    afterAll(async () => new Promise((resolve) => garbage.close(resolve)));

    it.each([
      ['not JSON', { status: 201, type: 'text/html', body: '<html>maintenance</html>' }, /not JSON|Unexpected token/],
      ['JSON of the wrong shape', { status: 201, type: 'application/json', body: '{"ok":true}' }, /id|shape|expected/i],
      [
        'a huge body',
        { status: 201, type: 'application/json', body: `{"junk":"${'x'.repeat(20 * 1024 * 1024)}"}` },
        /id|shape|expected|too large/i,
      ],
    ])('should fail the record, not the run, when the remote answers %s', async (_name, response, message) => {
      answer = response;
      const port = (garbage.address() as AddressInfo).port;
      const broken = await engine.client.upsertIntegration({
        type: 'demo',
        name: uniqueName('garbage'),
        transport: { baseUrl: `http://127.0.0.1:${port}` },
        secretRef: `env:${DEMO_TOKEN_ENV}`,
      });
      const outcome = await waitFor('the export', async () =>
        engine.client.waitForExport(await engine.client.scheduleExport({ integration: broken.name, connector: 'contact', id: 2 })),
      );
      expect(outcome).toMatchObject({ ok: true, status: 'completed_with_failures', counters: { written: 0, failed: 1 } });
      if (outcome.ok) expect(outcome.failures[0]?.message).toMatch(message);
    });
  });
});
