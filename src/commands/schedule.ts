/** `tidesync schedule set|list|remove|trigger`: recurring reconciliation of a connector (Temporal Schedules). */
import type { BulkMode } from '../activities/bulk-types';
import type { BulkSchedule } from '../bulk-schedules';
import { openCommandContext } from './connect';

/** Options of `tidesync schedule set`. */
export interface ScheduleSetOptions {
  readonly every?: string;
  readonly cron?: string;
  readonly mode: BulkMode;
  readonly filter?: string;
  readonly pageSize?: number;
  readonly parallelism?: number;
  readonly json: boolean;
}

/** Creates or replaces a connector's reconciliation schedule and prints it. */
export async function scheduleSetCommand(integration: string, connector: string, options: ScheduleSetOptions): Promise<number> {
  const ctx = await openCommandContext();
  try {
    const schedule = await ctx.client.setBulkSchedule({
      integration,
      connector,
      mode: options.mode,
      ...(options.every !== undefined ? { every: options.every } : {}),
      ...(options.cron !== undefined ? { cron: options.cron } : {}),
      ...(options.filter !== undefined ? { filter: options.filter } : {}),
      ...(options.pageSize !== undefined ? { pageSize: options.pageSize } : {}),
      ...(options.parallelism !== undefined ? { parallelism: options.parallelism } : {}),
    });
    console.log(options.json ? JSON.stringify(schedule) : describe(schedule));
    return 0;
  } finally {
    await ctx.close();
  }
}

/** Lists the reconciliation schedules. */
export async function scheduleListCommand(options: { json: boolean }): Promise<number> {
  const ctx = await openCommandContext();
  try {
    const schedules = await ctx.client.listBulkSchedules();
    if (options.json) console.log(JSON.stringify(schedules));
    else if (schedules.length === 0) console.log('no reconciliation schedules');
    else for (const s of schedules) console.log(describe(s));
    return 0;
  } finally {
    await ctx.close();
  }
}

/** Removes a connector's schedule (exit code 1 when it had none). */
export async function scheduleRemoveCommand(integration: string, connector: string): Promise<number> {
  const ctx = await openCommandContext();
  try {
    const removed = await ctx.client.removeBulkSchedule(integration, connector);
    console.log(
      removed ? `removed the schedule of ${integration}/${connector}` : `${integration}/${connector} has no schedule: nothing to remove`,
    );
    return removed ? 0 : 1;
  } finally {
    await ctx.close();
  }
}

/** Runs a connector's reconciliation now. */
export async function scheduleTriggerCommand(integration: string, connector: string): Promise<number> {
  const ctx = await openCommandContext();
  try {
    await ctx.client.triggerBulkSchedule(integration, connector);
    console.log(`triggered the reconciliation of ${integration}/${connector}`);
    return 0;
  } finally {
    await ctx.close();
  }
}

function describe(s: BulkSchedule): string {
  const next = s.nextRuns[0] ? `next ${s.nextRuns[0].toISOString()}` : 'no next run';
  const last = s.recentRuns[s.recentRuns.length - 1];
  return `${s.scheduleId}\t${s.when}\t${s.mode}${s.paused ? '\tPAUSED' : ''}\t${next}${last ? `\tlast ${last.workflowId}` : ''}`;
}
