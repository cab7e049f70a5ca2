import { sql } from 'kysely';
import { exportWorkflowId } from '../src/client';
import { compareRemoteWithLocal, setupDemo } from '../examples/demo/demo-setup';
import type { ExportInput, ExportResult } from '../src/workflows';
import { changedSignal } from '../src/workflows/signals';
import { STATUS_ATTRIBUTE } from '../src/search-attributes';
import { createTestDatabase, startTestEngine, uniqueName, waitFor } from './helpers';

describe('long-lived entity workflows', () => {
  it('should continue as new when passes reach the limit, and still export the latest state', async () => {
    const database = await createTestDatabase();
    const engine = await startTestEngine(database);
    const demo = await setupDemo({ db: database.app, client: engine.client, contacts: 3, integrationName: uniqueName('demo') });
    try {
      await engine.client.waitForExport(
        await engine.client.scheduleExport({ integration: demo.integration.name, connector: 'contact', id: 1 }),
      );
      // Pass 1's write fails three times (its local activity's attempts), so the run waits on a
      // durable timer; a change committed meanwhile needs a second pass, beyond the limit of 1.
      await engine.client.upsertIntegration({
        type: demo.integration.type,
        name: demo.integration.name,
        transport: demo.integration.transport,
        secretRef: demo.integration.secretRef,
        probeIntervalMs: 1000,
        breakerThreshold: 1000,
      });
      await sql`update contacts set phone = 'first' where id = 1`.execute(database.app);
      demo.remote.injectFault({ kind: '5xx', status: 503, count: 3, method: 'PATCH' });
      const workflowId = exportWorkflowId(demo.integration.name, 'contact', 1);
      const input: ExportInput = { integration: demo.integration.name, connector: 'contact', ids: [1], maxPassesPerRun: 1 };
      const handle = await engine.temporal.workflow.signalWithStart('demo_contact_export', {
        taskQueue: engine.taskQueue,
        workflowId,
        args: [input],
        signal: changedSignal,
      });
      await waitFor('the run waiting to retry', async () => {
        const description = await engine.temporal.workflow.getHandle(workflowId, handle.signaledRunId).describe();
        return description.typedSearchAttributes.get(STATUS_ATTRIBUTE) === 'retrying';
      });
      await sql`update contacts set phone = 'second' where id = 1`.execute(database.app);
      await engine.client.scheduleExport({ integration: demo.integration.name, connector: 'contact', id: 1 });

      const result = (await handle.result()) as ExportResult; // follows the continue-as-new chain
      expect(result.passes).toBe(1);
      const first = await engine.temporal.workflow.getHandle(workflowId, handle.signaledRunId).describe();
      expect(first.status.name).toBe('CONTINUED_AS_NEW');
      const latest = await engine.temporal.workflow.getHandle(workflowId).describe();
      expect(latest.runId).not.toBe(handle.signaledRunId);
      expect(await compareRemoteWithLocal(demo, database.app, engine.client, [1])).toMatchObject({ matches: true });
      expect((await demo.crm.get((demo.remote.contacts().find((c) => c.phone === 'second') ?? { id: 'none' }).id))?.phone).toBe('second');
    } finally {
      await engine.close();
      await demo.remote.stop();
      await database.drop();
    }
  });
});
