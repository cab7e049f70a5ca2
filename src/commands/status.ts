/** `tidesync status`: recent job executions as a table, or JSON. */
import { openCommandContext } from './connect';

/** Options of the status command. */
export interface StatusCommandOptions {
  readonly json: boolean;
  readonly limit: number;
  readonly integration?: string;
}

/** Prints recent executions, newest first. */
export async function statusCommand(options: StatusCommandOptions): Promise<number> {
  const ctx = await openCommandContext();
  try {
    const rows = await ctx.client.recentExecutions({
      limit: options.limit,
      ...(options.integration ? { integration: options.integration } : {}),
    });
    if (options.json) {
      console.log(JSON.stringify(rows));
      return 0;
    }
    if (rows.length === 0) {
      console.log('no job executions yet');
      return 0;
    }
    const table = rows.map((r) => ({
      started: r.started_at.toISOString().replace('T', ' ').slice(0, 19),
      job: r.job,
      integration: r.integration,
      connector: r.connector,
      ids: r.entity_ids.join(','),
      status: r.status,
      'r/p/w/s/f': `${r.read_count}/${r.processed_count}/${r.written_count}/${r.skipped_count}/${r.failed_count}`,
      error: r.failed_step ? `${r.failed_step}: ${r.error ?? ''}` : (r.failures[0]?.message ?? ''),
    }));
    const columns = Object.keys(table[0] as object) as Array<keyof (typeof table)[number]>;
    const widths = columns.map((c) => Math.min(60, Math.max(c.length, ...table.map((row) => row[c].length))));
    const line = (cells: string[]) => cells.map((cell, i) => cell.slice(0, widths[i]).padEnd(widths[i] ?? 0)).join('  ');
    console.log(line(columns));
    for (const row of table) console.log(line(columns.map((c) => row[c])));
    return 0;
  } finally {
    await ctx.close();
  }
}
