/** `tidesync export <integration> <connector> <id...>`: starts exports, waits, prints each outcome. */
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
    let failed = 0;
    for (const s of scheduled) {
      const outcome = await ctx.client.waitForExport(s);
      const line = outcome.ok
        ? {
            id: s.key,
            status: outcome.status,
            written: outcome.counters.written,
            skipped: outcome.counters.skipped,
            failed: outcome.counters.failed,
            detail: [...outcome.warnings, ...outcome.failures.map((f) => f.message)].join('; '),
            workflowId: outcome.workflowId,
          }
        : {
            id: s.key,
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
  } finally {
    await ctx.close();
  }
}
