/**
 * A create the demo CRM applied but whose answer tidesync never got (the writer timed out), then
 * 503s until the integration's retry window ran out: the entity ends `failed` without a remote id
 * while the CRM holds its record. Shared by the tests of what comes after such a create.
 */
import { sql } from 'kysely';
import type { Demo } from '../../examples/demo/demo-setup';
import type { TestDatabase, TestEngine } from '../helpers';

/** How slow the first answer is: past the writer's timeout, which the test's integration sets below this. */
export const LOST_ANSWER_SLOW_MS = 800;

/** Helpers of one test file around contacts whose email is `created.<id>@example.com`. */
export function lostCreates(database: TestDatabase, demo: Demo, engine: TestEngine) {
  const remoteOf = (id: number) => demo.remote.contacts().filter((c) => c.email === `created.${id}@example.com`);
  const state = (id: number) =>
    database.db
      .selectFrom('sync_state')
      .selectAll()
      .where('integration_id', '=', demo.integration.id)
      .where('entity_id', '=', String(id))
      .executeTakeFirst();
  const exportOnce = async (id: number) =>
    engine.client.waitForExport(await engine.client.scheduleExport({ integration: demo.integration.name, connector: 'contact', id }));

  /** Creates contact `id` remotely while its writer sees only a timeout and then 503s until the window ends. */
  async function createWithLostAnswer(id: number): Promise<void> {
    await sql`update contacts set email = ${`created.${id}@example.com`} where id = ${id}`.execute(database.app);
    demo.remote.injectFault({ kind: 'slow', delayMs: LOST_ANSWER_SLOW_MS, apply: true, count: 1 });
    demo.remote.injectFault({ kind: '5xx', status: 503, count: 1_000_000 });
    const outcome = await exportOnce(id);
    demo.remote.clearFaults();
    expect(outcome).toMatchObject({ ok: true, status: 'completed_with_failures', failures: [{ code: 'retry_window_exhausted' }] });
    // The remote has it; tidesync cannot know yet.
    expect(remoteOf(id)).toHaveLength(1);
    expect(await state(id)).toMatchObject({ status: 'failed', remote_id: null });
  }

  return { remoteOf, state, exportOnce, createWithLostAnswer };
}
