/** `tidesync failures` and `tidesync retry-failed`: the records kept as `failed`, and exporting them again. */
import { parseEntityId } from '../entity-id';
import { openCommandContext } from './connect';
import { printOutcomes } from './export';

/** Which failed records a command works on. */
export interface FailureScope {
  readonly integration?: string;
  readonly connector?: string;
}

/** Prints failed records, oldest failure first: who, since when, how many attempts, and why. */
export async function failuresCommand(options: FailureScope & { json: boolean; limit: number }): Promise<number> {
  const ctx = await openCommandContext();
  try {
    const rows = await ctx.client.listFailures({ ...scopeOf(options), limit: options.limit });
    if (options.json) {
      console.log(JSON.stringify(rows));
      return 0;
    }
    if (rows.length === 0) console.log('no failed records');
    for (const r of rows) {
      const since = r.failedAt ? r.failedAt.toISOString().replace('T', ' ').slice(0, 19) : 'unknown time';
      console.log(`${r.integration}/${r.connector}/${r.key}\tfailed ${since}\tattempts=${r.attempts}\t${r.lastError ?? ''}`);
    }
    return 0;
  } finally {
    await ctx.close();
  }
}

/**
 * Exports failed records again and, unless `wait` is false, prints each outcome; exits 1 when any
 * is still not delivered (or an id given was not failed).
 */
export async function retryFailedCommand(
  options: FailureScope & { ids?: readonly string[]; json: boolean; wait: boolean },
): Promise<number> {
  const ctx = await openCommandContext();
  try {
    const scheduled = await ctx.client.retryFailed({
      ...scopeOf(options),
      ...(options.ids && options.ids.length > 0 ? { ids: options.ids.map(parseEntityId) } : {}),
    });
    if (scheduled.length === 0) {
      console.log('no failed records to retry');
      return 0;
    }
    const labels = scheduled.map((s) => (s.scheduled ? s.workflowId.replace(/^export\//, '') : s.key));
    if (!options.wait) {
      for (const [i, s] of scheduled.entries()) {
        console.log(
          options.json ? JSON.stringify(s) : `${labels[i]}\t${s.scheduled ? `scheduled\t${s.workflowId}` : `refused\t${s.reason}`}`,
        );
      }
      return scheduled.every((s) => s.scheduled) ? 0 : 1;
    }
    return await printOutcomes(ctx.client, scheduled, { json: options.json, labels });
  } finally {
    await ctx.close();
  }
}

function scopeOf(options: FailureScope): FailureScope {
  return {
    ...(options.integration !== undefined ? { integration: options.integration } : {}),
    ...(options.connector !== undefined ? { connector: options.connector } : {}),
  };
}
