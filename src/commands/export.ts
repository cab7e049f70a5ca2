/** `tidesync export <integration> <connector> <id...>`: starts exports, waits, prints each outcome. */
import type { ScheduleResult, TidesyncClient } from '../client';
import { parseEntityId } from '../entity-id';
import { openCommandContext } from './connect';

/** Options of the export command. */
export interface ExportCommandOptions {
  readonly json: boolean;
  readonly wait: boolean;
}

/** Runs the command; returns the process exit code (1 when any export failed). */
export async function exportCommand(
  integration: string,
  connector: string,
  ids: readonly string[],
  options: ExportCommandOptions,
): Promise<number> {
  const ctx = await openCommandContext();
  try {
    const scheduled = await ctx.client.scheduleExports({ integration, connector, ids: ids.map(parseEntityId) });
    if (!options.wait) {
      for (const s of scheduled) {
        const text = s.scheduled ? `${s.key}\tscheduled\t${s.workflowId}\t${s.runId}` : `${s.key}\trefused\t${s.reason}`;
        console.log(options.json ? JSON.stringify(s) : text);
      }
      return scheduled.every((s) => s.scheduled) ? 0 : 1;
    }
    return await printOutcomes(ctx.client, scheduled, options);
  } finally {
    await ctx.close();
  }
}

/**
 * Waits for each scheduled export and prints its outcome (a line of text, or JSON); returns 1 when
 * any export did not complete cleanly. `export` and `retry-failed` print the same way; `labels`
 * name the entities in place of their keys.
 */
export async function printOutcomes(
  client: TidesyncClient,
  scheduled: readonly ScheduleResult[],
  options: { json: boolean; labels?: readonly string[] },
): Promise<number> {
  let failed = 0;
  for (const [i, s] of scheduled.entries()) {
    const outcome = await client.waitForExport(s);
    const id = options.labels?.[i] ?? s.key;
    const line = outcome.ok
      ? {
          id,
          status: outcome.status,
          written: outcome.counters.written,
          skipped: outcome.counters.skipped,
          failed: outcome.counters.failed,
          detail: [...outcome.warnings, ...outcome.failures.map((f) => f.message)].join('; '),
          workflowId: outcome.workflowId,
        }
      : {
          id,
          status: s.scheduled ? 'failed' : 'refused',
          written: 0,
          skipped: 0,
          failed: 1,
          detail: outcome.error,
          workflowId: outcome.workflowId,
        };
    if (line.status !== 'completed') failed += 1;
    console.log(
      options.json
        ? JSON.stringify(line)
        : `${line.id}\t${line.status}\twritten=${line.written} skipped=${line.skipped} failed=${line.failed}\t${line.detail}`,
    );
  }
  return failed > 0 ? 1 : 0;
}
