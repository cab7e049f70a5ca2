/**
 * Recurring reconciliation: a Temporal Schedule per (integration, connector) that runs the bulk
 * export in `changed` mode every interval or on a cron expression, so rows whose changes never
 * reached the outbox (written by another program, or before capture was installed) still end on
 * the remote. Overlap policy SKIP: a run still going when the next is due makes that one skip.
 */
import { type Client, ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import type { BulkMode } from './activities/bulk-types';
import { bulkExportInput, bulkWorkflowLabels } from './bulk-exports';
import { ConfigurationError } from './errors';
import { parseDuration } from './retry-policy';
import type { Runtime } from './runtime';
import { BULK_EXPORT_WORKFLOW } from './workflows/bulk-definitions';

/**
 * How late a missed run may still start (a Temporal server or worker down at the due time): an
 * hour, so a short outage does not skip a reconciliation, and a long one does not start a pile.
 */
export const SCHEDULE_CATCHUP_WINDOW_MS = 60 * 60 * 1000;

/** The shortest interval accepted: a reconciliation reads every row, so more often is a mistake. */
export const MIN_SCHEDULE_INTERVAL_MS = 1000;

/** When a reconciliation runs: every interval, or on a cron expression (exactly one). */
export interface BulkScheduleRequest {
  readonly integration: string;
  readonly connector: string;
  /** `15m`, `1h`, `1d` or milliseconds. */
  readonly every?: string | number;
  /** Standard cron, e.g. `0 3 * * *` (UTC). */
  readonly cron?: string;
  /** Default `changed`. */
  readonly mode?: BulkMode;
  /** Only rows of a filter the job declares. */
  readonly filter?: string;
  readonly pageSize?: number;
  readonly parallelism?: number;
}

/** A reconciliation schedule, as `listBulkSchedules` reports it. */
export interface BulkSchedule {
  readonly scheduleId: string;
  readonly integration: string;
  readonly connector: string;
  /** `every 1h` or `cron 0 3 * * *`. */
  readonly when: string;
  readonly mode: BulkMode;
  readonly paused: boolean;
  readonly nextRuns: readonly Date[];
  readonly recentRuns: ReadonlyArray<{ readonly workflowId: string; readonly at: Date }>;
}

/** The schedule id of a connector's reconciliation: `bulk/<integration>/<connector>`. */
export function bulkScheduleId(integration: string, connector: string): string {
  return `bulk/${integration}/${connector}`;
}

interface ScheduleMemo {
  readonly integration: string;
  readonly connector: string;
  readonly when: string;
  readonly mode: BulkMode;
}

/** Creates and lists the reconciliation schedules of bulk exports. */
export class BulkSchedules {
  readonly #runtime: Pick<Runtime, 'connectors' | 'jobs' | 'services' | 'store'>;
  readonly #temporal: Client;
  readonly #taskQueue: string;

  constructor(runtime: Pick<Runtime, 'connectors' | 'jobs' | 'services' | 'store'>, temporal: Client, taskQueue: string) {
    this.#runtime = runtime;
    this.#temporal = temporal;
    this.#taskQueue = taskQueue;
  }

  /** Creates the schedule, or replaces the one this connector has. */
  async set(request: BulkScheduleRequest): Promise<BulkSchedule> {
    if ((request.every === undefined) === (request.cron === undefined)) {
      throw new ConfigurationError('a reconciliation schedule needs exactly one of every (an interval such as 1h) or cron (an expression)');
    }
    const input = await bulkExportInput(this.#runtime, {
      integration: request.integration,
      connector: request.connector,
      mode: request.mode ?? 'changed',
      ...(request.filter !== undefined ? { scope: { filter: request.filter } } : {}),
      ...(request.pageSize !== undefined ? { pageSize: request.pageSize } : {}),
      ...(request.parallelism !== undefined ? { parallelism: request.parallelism } : {}),
    });
    let spec;
    let when: string;
    if (request.every !== undefined) {
      const every = parseDuration(request.every, 'schedule interval');
      if (every < MIN_SCHEDULE_INTERVAL_MS) throw new ConfigurationError(`schedule interval ${every}ms is too short: use at least 1s`);
      spec = { intervals: [{ every }] };
      when = `every ${String(request.every)}`;
    } else {
      const cron = (request.cron as string).trim();
      if (cron.split(/\s+/).length < 5)
        throw new ConfigurationError(`cron expression '${cron}' is not valid: use five fields, e.g. '0 3 * * *'`);
      spec = { cronExpressions: [cron] };
      when = `cron ${cron}`;
    }
    const scheduleId = bulkScheduleId(input.integration, input.connector);
    const memo: ScheduleMemo = { integration: input.integration, connector: input.connector, when, mode: input.mode };
    const options = {
      spec,
      action: {
        type: 'startWorkflow' as const,
        workflowType: BULK_EXPORT_WORKFLOW,
        taskQueue: this.#taskQueue,
        args: [input],
        // Temporal appends the run's time: bulk/<integration>/<connector>/scheduled-<time>.
        workflowId: `${scheduleId}/scheduled`,
        ...bulkWorkflowLabels(input),
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: SCHEDULE_CATCHUP_WINDOW_MS },
      memo: { ...memo },
    };
    const handle = this.#temporal.schedule.getHandle(scheduleId);
    try {
      await handle.update(() => ({ ...options, state: { paused: false } }));
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
      await this.#temporal.schedule.create({ scheduleId, ...options });
    }
    return this.#describe(scheduleId);
  }

  /** Every reconciliation schedule, by id. */
  async list(): Promise<BulkSchedule[]> {
    const out: BulkSchedule[] = [];
    for await (const summary of this.#temporal.schedule.list()) {
      if (summary.scheduleId.startsWith('bulk/')) out.push(await this.#describe(summary.scheduleId));
    }
    return out.sort((a, b) => a.scheduleId.localeCompare(b.scheduleId));
  }

  /** Removes a connector's schedule; false when it had none. */
  async remove(integration: string, connector: string): Promise<boolean> {
    try {
      await this.#temporal.schedule.getHandle(bulkScheduleId(integration, connector)).delete();
      return true;
    } catch (err) {
      if (err instanceof ScheduleNotFoundError) return false;
      throw err;
    }
  }

  /** Runs a connector's reconciliation now (skipped when one is still running). */
  async trigger(integration: string, connector: string): Promise<void> {
    // The SDK's default for a trigger is ALLOW_ALL: a run beside the running one, and one the
    // schedule does not track, so its own next run would start beside it too.
    await this.#temporal.schedule.getHandle(bulkScheduleId(integration, connector)).trigger(ScheduleOverlapPolicy.SKIP);
  }

  async #describe(scheduleId: string): Promise<BulkSchedule> {
    const d = await this.#temporal.schedule.getHandle(scheduleId).describe();
    const memo = (d.memo ?? {}) as Partial<ScheduleMemo>;
    return {
      scheduleId,
      integration: memo.integration ?? '',
      connector: memo.connector ?? '',
      when: memo.when ?? '',
      mode: memo.mode ?? 'changed',
      paused: d.state.paused,
      nextRuns: d.info.nextActionTimes,
      recentRuns: d.info.recentActions.map((a) => ({ workflowId: a.action.workflow.workflowId, at: a.takenAt })),
    };
  }
}
