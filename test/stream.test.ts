import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Kysely, sql } from 'kysely';
import { compareRemoteWithLocal, type Demo, setupDemo } from '../examples/demo/demo-setup';
import { enqueueExport, enqueueExports } from '../src/outbox/enqueue';
import { OutboxRelay } from '../src/outbox/relay';
import { streamWorkflowId } from '../src/client';
import type { TidesyncDatabase } from '../src/store/schema';
import type { StreamInput } from '../src/workflows';
import { createTestDatabase, startTestEngine, type TestEngine, uniqueName, waitFor } from './helpers';
import { DEMO_CONFIG, runCli } from './support/cli';

/**
 * Change streams: the relay hands a connector's changed entities to one workflow per connector,
 * which exports them in batched passes while keeping the per-entity rules: ordering, coalescing
 * (see also the burst test in outbox.test.ts) and finding the runs that exported an entity.
 */
describe('change streams', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let engine: TestEngine;
  let demo: Demo;
  let db: Kysely<TidesyncDatabase>;
  let relay: OutboxRelay;
  let integration: string;

  beforeAll(async () => {
    database = await createTestDatabase();
    db = database.db;
    engine = await startTestEngine(database);
    demo = await setupDemo({ db: database.app, client: engine.client, contacts: 12, integrationName: uniqueName('stream') });
    integration = demo.integration.name;
    relay = new OutboxRelay({ db, databaseUrl: database.url, client: engine.client });
    relay.start();
  });
  afterAll(async () => {
    await relay?.stop();
    await engine?.close();
    await demo?.remote.stop();
    await database?.drop();
  });

  const remoteIdOf = async (id: number) =>
    (
      await db
        .selectFrom('sync_state')
        .select('remote_id')
        .where('integration_id', '=', demo.integration.id)
        .where('entity_id', '=', String(id))
        .executeTakeFirst()
    )?.remote_id ?? undefined;

  const change = (id: number, phone: string) =>
    database.app.transaction().execute(async (trx) => {
      await sql`update contacts set phone = ${phone} where id = ${id}`.execute(trx);
      await enqueueExport(trx, { integration, connector: 'contact', id });
    });

  async function waitForIdle(): Promise<void> {
    await waitFor('pending outbox rows dispatched', async () => {
      const pending = await db.selectFrom('outbox').select('id').where('status', '=', 'pending').execute();
      return pending.length === 0;
    });
    await waitFor('the change stream idle', async () => {
      const stream = await engine.client.streamStatus(integration, 'contact');
      return stream === null || (stream.pending === 0 && stream.inFlight === 0);
    });
  }

  it('should export many entities in a few passes of one run, each findable by its id', async () => {
    const ids = [1, 2, 3, 4, 5, 6];
    await database.app.transaction().execute((trx) => enqueueExports(trx, { integration, connector: 'contact', ids }));
    await waitFor('the six contacts on the remote', async () => (await Promise.all(ids.map(remoteIdOf))).every(Boolean));
    await waitForIdle();
    expect((await compareRemoteWithLocal(demo, database.app, engine.client, ids)).mismatches).toEqual([]);

    // One relay batch, one signal: far fewer passes than entities, all in the stream's workflow.
    const workflowId = streamWorkflowId(integration, 'contact');
    const passes = await engine.client.recentExecutions({ integration, limit: 50 });
    expect(passes.length).toBeGreaterThan(0);
    expect(passes.length).toBeLessThan(ids.length);
    expect(new Set(passes.map((p) => p.workflow_id))).toEqual(new Set([workflowId]));
    expect(passes.flatMap((p) => p.entity_ids).sort()).toEqual(ids.map(String).sort());

    // The Temporal UI finds the run by any of its entities.
    const runs = await waitFor('the run listed by TidesyncEntityIds', async () => {
      const found: string[] = [];
      for await (const run of engine.temporal.workflow.list({
        query: `TidesyncIntegration = '${integration}' AND TidesyncEntityIds = '4'`,
      })) {
        found.push(run.workflowId);
      }
      return found.length > 0 ? found : null;
    });
    expect(runs).toEqual([workflowId]);

    // And so does the command line, from the execution records.
    const env = {
      ...process.env,
      DATABASE_URL: database.url,
      TIDESYNC_HOME: await mkdtemp(path.join(tmpdir(), 'tidesync-home-')),
      TIDESYNC_CONFIG: DEMO_CONFIG,
      TIDESYNC_TASK_QUEUE: engine.taskQueue,
    };
    const json = await runCli(['status', '--entity', '4', '--integration', integration, '--json'], env);
    expect(json.stderr).toBe('');
    const rows = JSON.parse(json.stdout) as Array<{ workflow_id: string; entity_ids: string[] }>;
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.workflow_id === workflowId && r.entity_ids.includes('4'))).toBe(true);
    const text = await runCli(['status', '--entity', '4', '--integration', integration], env);
    expect(text.stdout).toContain('TidesyncEntityIds = "4"');
    expect(text.stdout).toContain(workflowId);
    const none = await runCli(['status', '--entity', '999', '--integration', integration], env);
    expect(none.stdout).toContain('no job execution exported entity 999');
  });

  it('should export a change committed while a write is in flight after it, and end with the latest state', async () => {
    await change(7, 'created first');
    await waitFor('contact 7 on the remote', () => remoteIdOf(7));
    await waitForIdle();
    const remoteId = (await remoteIdOf(7)) as string;
    demo.remote.resetStats();

    // The update's batch write is slow (applied, answered after 1.5 s); a second change commits meanwhile.
    demo.remote.injectFault({ kind: 'slow', delayMs: 1500, apply: true, count: 1, method: 'POST', path: '/contacts/batch' });
    await change(7, 'first update');
    await waitFor('the first update in flight', async () => demo.remote.stats().faultsServed > 0);
    await change(7, 'committed during the write');
    await waitForIdle();

    expect((await demo.crm.get(remoteId))?.phone).toBe('committed during the write');
    expect(demo.remote.stats().writesByContact[remoteId]).toBe(2);
  });

  it('should continue as new carrying what still waits, and export everything', async () => {
    // A run of the stream that continues as new after every pass, as a long one does after many.
    const workflowId = streamWorkflowId(integration, 'contact');
    await waitFor('the stream ended', async () => (await engine.client.streamStatus(integration, 'contact')) === null, 20_000);
    const input: StreamInput = { integration, connector: 'contact', job: 'demo_contact_export', maxPassesPerRun: 1 };
    await engine.temporal.workflow.start('streamExport', { taskQueue: engine.taskQueue, workflowId, args: [input] });

    for (const id of [8, 9, 10, 11]) {
      await change(id, `carried ${id}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await waitFor('contacts 8 to 11 on the remote', async () => (await Promise.all([8, 9, 10, 11].map(remoteIdOf))).every(Boolean));
    await waitForIdle();
    expect((await compareRemoteWithLocal(demo, database.app, engine.client, [8, 9, 10, 11])).mismatches).toEqual([]);

    const statuses: string[] = [];
    for await (const run of engine.temporal.workflow.list({ query: `WorkflowId = '${workflowId}'` })) statuses.push(run.status.name);
    expect(statuses).toContain('CONTINUED_AS_NEW');
  });
});
