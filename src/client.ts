/**
 * What the application calls: schedule exports of entities and read their outcome. Unknown
 * integrations, connectors and jobs are rejected here, at the call, never as a stuck workflow.
 */
import { type Client, WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import type { Kysely } from 'kysely';
import type { TidesyncDatabase } from './store/schema';
import { type EntityId, encodeEntityId, parseEntityId } from './entity-id';
import { type IntegrationSettings, getIntegration, refusalReason, upsertIntegration } from './store/integrations';
import { type ExecutionQuery, type JobExecution, listExecutions } from './store/executions';
import { type EntitySyncState, listSyncStates } from './store/sync-state';
import { ConfigurationError, InvalidEntityIdError } from './errors';
import type { JobDefinition } from './jobs/definition';
import { type FailedRecord, listFailedRecords } from './store/failures';
import { type IntegrationHealth, listIntegrationHealth } from './store/integration-health';
import { type RateLimitState, listRateLimits } from './store/rate-limits';
import { type Runtime, getJob } from './runtime';
import {
  CONNECTOR_ATTRIBUTE,
  ENTITY_ID_ATTRIBUTE,
  ENTITY_IDS_ATTRIBUTE,
  INTEGRATION_ATTRIBUTE,
  STATUS_ATTRIBUTE,
} from './search-attributes';
import type { Integration } from './connectors/connector';
import type { ExportInput, ExportResult, StreamInput } from './workflows';
import { type StreamStatus, changedSignal, streamChangesSignal, streamStatusQuery } from './workflows/signals';
import type { streamExport } from './workflows/stream-export';

import { DEFAULT_TASK_QUEUE } from './config/servers';
import { type BulkExportRequest, type BulkExportSummary, BulkExports, type StartedBulkExport } from './bulk-exports';
import { type BulkSchedule, type BulkScheduleRequest, BulkSchedules } from './bulk-schedules';
import type { BulkExportResult, BulkProgress } from './workflows/bulk-definitions';

/** One entity to export. */
export interface ExportRequest {
  readonly integration: string;
  readonly connector: string;
  readonly id: EntityId;
}

/** An export handed to Temporal: a new run, or a running one told to export again. */
export interface ScheduledExport {
  readonly scheduled: true;
  readonly workflowId: string;
  /** The run that will export this change (it may continue as new; waiting follows it). */
  readonly runId: string;
  readonly job: string;
  readonly key: string;
}

/** An export the integration's settings refused, with the reason. */
export interface RefusedExport {
  readonly scheduled: false;
  readonly key: string;
  readonly reason: string;
}

/** What scheduling one entity's export did. */
export type ScheduleResult = ScheduledExport | RefusedExport;

/** The outcome of one export run, as `waitForExport` reports it. */
export type ExportOutcome =
  | ({ readonly ok: true; readonly workflowId: string } & ExportResult)
  | { readonly ok: false; readonly workflowId: string | null; readonly error: string };

/** Options of `TidesyncClient`. */
export interface TidesyncClientOptions {
  readonly runtime: Pick<Runtime, 'connectors' | 'jobs' | 'services' | 'store'>;
  readonly temporal: Client;
  readonly taskQueue?: string;
}

/** The workflow id of an entity's export: one per entity, readable in the Temporal UI. */
export function exportWorkflowId(integration: string, connector: string, id: EntityId): string {
  return `export/${integration}/${connector}/${encodeEntityId(id)}`;
}

/** The workflow id of a connector's change stream (see `workflows/stream-export.ts`). */
export function streamWorkflowId(integration: string, connector: string): string {
  return `stream/${integration}/${connector}`;
}

/** Changes handed to a connector's change stream: accepted (with the stream's run), or refused with the reason. */
export type StreamedChange =
  { readonly scheduled: true; readonly key: string; readonly workflowId: string; readonly runId: string } | RefusedExport;

/** Schedules exports and reads their results. */
export class TidesyncClient {
  readonly #runtime: Pick<Runtime, 'connectors' | 'jobs' | 'services' | 'store'>;
  readonly #db: Kysely<TidesyncDatabase>;
  readonly #temporal: Client;
  readonly #taskQueue: string;
  readonly #bulk: BulkExports;
  readonly #schedules: BulkSchedules;

  constructor(options: TidesyncClientOptions) {
    this.#runtime = options.runtime;
    this.#db = options.runtime.store;
    this.#temporal = options.temporal;
    this.#taskQueue = options.taskQueue ?? DEFAULT_TASK_QUEUE;
    this.#bulk = new BulkExports(this.#runtime, this.#temporal, this.#taskQueue);
    this.#schedules = new BulkSchedules(this.#runtime, this.#temporal, this.#taskQueue);
  }

  /**
   * Starts a bulk export of a connector's rows (all, a list of ids, or a filter the job declares)
   * as one long-running workflow, `bulk/<integration>/<connector>/<start time or id>`.
   */
  startBulkExport(request: BulkExportRequest): Promise<StartedBulkExport> {
    return this.#bulk.start(request);
  }

  /** Where a bulk export stands: done, total, written, skipped, failed, rate and ETA. */
  bulkProgress(workflowId: string): Promise<BulkProgress> {
    return this.#bulk.progress(workflowId);
  }

  /** Pauses a bulk export after its pages in flight; it waits holding no worker slot. */
  pauseBulkExport(workflowId: string): Promise<BulkProgress> {
    return this.#bulk.pause(workflowId);
  }

  /** Resumes a paused bulk export. */
  resumeBulkExport(workflowId: string): Promise<BulkProgress> {
    return this.#bulk.resume(workflowId);
  }

  /** Cancels a bulk export after its pages in flight; its record keeps what was done. */
  cancelBulkExport(workflowId: string, reason?: string): Promise<BulkProgress> {
    return this.#bulk.cancel(workflowId, reason);
  }

  /** Waits for a bulk export to end and returns its result. */
  waitForBulkExport(workflowId: string): Promise<BulkExportResult> {
    return this.#bulk.result(workflowId);
  }

  /** Bulk exports, newest first. */
  listBulkExports(options: { integration?: string; running?: boolean; limit?: number } = {}): Promise<BulkExportSummary[]> {
    return this.#bulk.list(options);
  }

  /** Creates or replaces a connector's recurring reconciliation (a Temporal Schedule of bulk exports). */
  setBulkSchedule(request: BulkScheduleRequest): Promise<BulkSchedule> {
    return this.#schedules.set(request);
  }

  /** Every reconciliation schedule. */
  listBulkSchedules(): Promise<BulkSchedule[]> {
    return this.#schedules.list();
  }

  /** Removes a connector's reconciliation schedule; false when it had none. */
  removeBulkSchedule(integration: string, connector: string): Promise<boolean> {
    return this.#schedules.remove(integration, connector);
  }

  /** Runs a connector's reconciliation now. */
  triggerBulkSchedule(integration: string, connector: string): Promise<void> {
    return this.#schedules.trigger(integration, connector);
  }

  /**
   * Exports one entity: signal-with-start on its workflow, so a change arriving while an export of
   * the same entity runs is folded into that run (it exports once more with the latest state).
   * A disabled integration, or one with two-way sync off, schedules nothing and says why.
   */
  async scheduleExport(request: ExportRequest): Promise<ScheduleResult> {
    const [result] = await this.scheduleExports({ ...request, ids: [request.id] });
    return result as ScheduleResult;
  }

  /**
   * Exports many entities of one connector (one workflow per entity). Ids are checked first
   * against the job's reader (the identifier columns' types): a bad id throws an
   * `InvalidEntityIdError` naming it, or with `invalidIds: 'refuse'` is refused with the reason
   * while the others are scheduled (the relay does that).
   */
  async scheduleExports(
    request: { integration: string; connector: string; ids: readonly EntityId[] },
    options: { invalidIds?: 'throw' | 'refuse' } = {},
  ): Promise<ScheduleResult[]> {
    const checked = await this.#check(request, options);
    if ('refused' in checked) return checked.refused;
    const { integration, job, problems } = checked;
    return Promise.all(
      request.ids.map(async (id, i): Promise<ScheduleResult> => {
        const problem = problems[i];
        if (problem) return { scheduled: false, key: encodeEntityId(id), reason: problem };
        const key = encodeEntityId(id);
        const workflowId = exportWorkflowId(integration.name, request.connector, id);
        const input: ExportInput = { integration: integration.name, connector: request.connector, ids: [id] };
        const handle = await this.#temporal.workflow.signalWithStart(job.name, {
          taskQueue: this.#taskQueue,
          workflowId,
          args: [input],
          signal: changedSignal,
          signalArgs: [],
          staticSummary: `Export ${request.connector} ${key} to ${integration.name}`,
          staticDetails: `Job **${job.title}** (\`${job.name}\`), integration \`${integration.name}\` (${integration.type}), connector \`${request.connector}\`, entity \`${key}\`.`,
          typedSearchAttributes: [
            { key: INTEGRATION_ATTRIBUTE, value: integration.name },
            { key: CONNECTOR_ATTRIBUTE, value: request.connector },
            { key: ENTITY_ID_ATTRIBUTE, value: key },
            { key: ENTITY_IDS_ATTRIBUTE, value: [key] },
            { key: STATUS_ATTRIBUTE, value: 'scheduled' },
          ],
        });
        return { scheduled: true, workflowId, runId: handle.signaledRunId, job: job.name, key };
      }),
    );
  }

  /**
   * Hands changed entities of one connector to its change stream: one signal-with-start on
   * `stream/<integration>/<connector>` for all of them, which exports them in batches with the
   * per-entity coalescing rules (the outbox relay calls this). Checks as `scheduleExports` does.
   */
  async streamExports(
    request: { integration: string; connector: string; ids: readonly EntityId[] },
    options: { invalidIds?: 'throw' | 'refuse' } = {},
  ): Promise<StreamedChange[]> {
    const checked = await this.#check(request, options);
    if ('refused' in checked) return checked.refused;
    const { integration, job, problems } = checked;
    const accepted = request.ids.filter((_, i) => !problems[i]);
    let started: { workflowId: string; runId: string } | undefined;
    if (accepted.length > 0) {
      const workflowId = streamWorkflowId(integration.name, request.connector);
      const input: StreamInput = { integration: integration.name, connector: request.connector, job: job.name };
      const handle = await this.#temporal.workflow.signalWithStart<typeof streamExport, [{ ids: readonly EntityId[] }]>('streamExport', {
        taskQueue: this.#taskQueue,
        workflowId,
        args: [input],
        signal: streamChangesSignal,
        signalArgs: [{ ids: accepted }],
        staticSummary: `Stream of ${request.connector} changes to ${integration.name}`,
        staticDetails: `Job **${job.title}** (\`${job.name}\`), integration \`${integration.name}\` (${integration.type}), connector \`${request.connector}\`: changes from the outbox, exported in batches.`,
        typedSearchAttributes: [
          { key: INTEGRATION_ATTRIBUTE, value: integration.name },
          { key: CONNECTOR_ATTRIBUTE, value: request.connector },
          { key: STATUS_ATTRIBUTE, value: 'scheduled' },
        ],
      });
      started = { workflowId, runId: handle.signaledRunId };
    }
    return request.ids.map((id, i): StreamedChange => {
      const key = encodeEntityId(id);
      const problem = problems[i];
      if (problem || !started) return { scheduled: false, key, reason: problem ?? 'not valid' };
      return { scheduled: true, key, ...started };
    });
  }

  /**
   * What a connector's change stream is doing (waiting and in-flight entities, passes, counters),
   * or null when none runs (it ends after a quiet spell).
   */
  async streamStatus(integration: string, connector: string): Promise<StreamStatus | null> {
    const handle = this.#temporal.workflow.getHandle(streamWorkflowId(integration, connector));
    try {
      if ((await handle.describe()).status.name !== 'RUNNING') return null;
      return await handle.query(streamStatusQuery);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    }
  }

  /** The integration and job of a request, and each id's problem; or every id refused by the settings. */
  async #check(
    request: { integration: string; connector: string; ids: readonly EntityId[] },
    options: { invalidIds?: 'throw' | 'refuse' },
  ): Promise<{ integration: Integration; job: JobDefinition; problems: ReadonlyArray<string | null> } | { refused: RefusedExport[] }> {
    const integration = await getIntegration(this.#db, request.integration);
    const job = getJob(this.#runtime, this.#runtime.connectors.exportWorkflowType(integration.type, request.connector));
    const refusal = refusalReason(integration);
    if (refusal) return { refused: request.ids.map((id) => ({ scheduled: false, key: encodeEntityId(id), reason: refusal })) };
    const problems = await this.#checkIds(job, request.ids);
    const bad = problems.filter((p): p is string => p !== null);
    if (bad.length > 0 && options.invalidIds !== 'refuse') {
      throw new InvalidEntityIdError(
        bad.length === 1 ? (bad[0] as string) : `${bad.length} entity ids are not valid: ${bad.slice(0, 3).join('; ')}`,
      );
    }
    return { integration, job, problems };
  }

  /** The first step's reader checks the ids it will be given (when it can). */
  async #checkIds(job: JobDefinition, ids: readonly EntityId[]): Promise<ReadonlyArray<string | null>> {
    const step = job.steps[0];
    const reader =
      step && this.#runtime.services.has('reader', step.reader) ? this.#runtime.services.get('reader', step.reader) : undefined;
    return (await reader?.checkIds?.(ids, step?.parameters ?? {})) ?? ids.map(() => null);
  }

  /**
   * Waits for an export run to finish (following continue-as-new) and reports its outcome; a
   * failed run, or an export the settings refused, is an outcome too.
   */
  async waitForExport(scheduled: ScheduleResult | Pick<ScheduledExport, 'workflowId' | 'runId'>): Promise<ExportOutcome> {
    if ('scheduled' in scheduled && !scheduled.scheduled) return { ok: false, workflowId: null, error: scheduled.reason };
    const handle = this.#temporal.workflow.getHandle(scheduled.workflowId, scheduled.runId);
    try {
      const result = (await handle.result()) as ExportResult;
      return { ok: true, workflowId: scheduled.workflowId, ...result };
    } catch (err) {
      if (!(err instanceof WorkflowFailedError)) throw err;
      return { ok: false, workflowId: scheduled.workflowId, error: err.cause?.message ?? err.message };
    }
  }

  /** Creates an integration (a link to one remote instance), or updates the one of that name. */
  async upsertIntegration(settings: IntegrationSettings): Promise<Integration> {
    this.#runtime.connectors.get(settings.type, undefined);
    return upsertIntegration(this.#db, settings);
  }

  /** The integration called `name`, or a `ConfigurationError` listing the configured ones. */
  async getIntegration(name: string): Promise<Integration> {
    return getIntegration(this.#db, name);
  }

  /** What tidesync knows of each exported entity of one connector: remote id, status, last error. */
  async syncStates(request: { integration: string; connector: string }): Promise<EntitySyncState[]> {
    const integration = await getIntegration(this.#db, request.integration);
    return listSyncStates(this.#db, { integrationId: integration.id, connector: request.connector });
  }

  /** Recent job execution records, newest first. */
  async recentExecutions(options: ExecutionQuery = {}): Promise<JobExecution[]> {
    return listExecutions(this.#db, options);
  }

  /**
   * Records marked `failed` (rejected by the remote, or whose transient failures outlasted the
   * retry window), oldest failure first, with the reason, the attempts and the time.
   */
  async listFailures(filter: FailureQuery = {}): Promise<FailedRecord[]> {
    await this.#checkScope(filter);
    return listFailedRecords(this.#db, {
      ...(filter.integration !== undefined ? { integration: filter.integration } : {}),
      ...(filter.connector !== undefined ? { connector: filter.connector } : {}),
      ...(filter.ids !== undefined ? { keys: filter.ids.map((id) => encodeEntityId(id)) } : {}),
      ...(filter.limit !== undefined ? { limit: filter.limit } : {}),
    });
  }

  /**
   * Exports failed records again (all, or those of an integration, a connector, or `ids`), each
   * through its entity's usual workflow; a success clears `failed`. An id that is not failed is
   * refused with the reason. Wait for the outcomes with `waitForExport`.
   */
  async retryFailed(filter: Omit<FailureQuery, 'limit'> = {}): Promise<ScheduleResult[]> {
    const failed = await this.listFailures(filter);
    const results: ScheduleResult[] = [];
    if (filter.ids !== undefined) {
      const found = new Set(failed.map((f) => f.key));
      for (const key of new Set(filter.ids.map((id) => encodeEntityId(id)))) {
        if (!found.has(key)) {
          results.push({
            scheduled: false,
            key,
            reason: `${filter.integration}/${filter.connector}/${key} is not failed: nothing to retry`,
          });
        }
      }
    }
    const groups = new Map<string, { integration: string; connector: string; ids: EntityId[] }>();
    for (const f of failed) {
      const name = `${f.integration}\u0000${f.connector}`;
      const group = groups.get(name) ?? { integration: f.integration, connector: f.connector, ids: [] };
      group.ids.push(parseEntityId(f.key));
      groups.set(name, group);
    }
    for (const group of groups.values()) results.push(...(await this.scheduleExports(group)));
    return results;
  }

  /** The circuit breaker of every integration (or one): healthy or degraded, the failure streak, probes. */
  async integrationHealth(options: { integration?: string } = {}): Promise<IntegrationHealth[]> {
    if (options.integration !== undefined) await getIntegration(this.#db, options.integration);
    return listIntegrationHealth(this.#db, options);
  }

  /**
   * The rate limits of every integration (or one) and what its limiter does now: the rate it
   * spaces requests at (less than the limit while it climbs back after a 429), a pause, the 429s.
   */
  async rateLimits(options: { integration?: string } = {}): Promise<RateLimitState[]> {
    if (options.integration !== undefined) await getIntegration(this.#db, options.integration);
    return listRateLimits(this.#db, options);
  }

  /** Checks the names in a failure query (unknown ones are errors that list the known). */
  async #checkScope(filter: FailureQuery): Promise<void> {
    if (filter.ids !== undefined && (filter.integration === undefined || filter.connector === undefined)) {
      throw new ConfigurationError('failed records are picked by id within one integration and connector: give both with the ids');
    }
    if (filter.integration === undefined) return;
    const integration = await getIntegration(this.#db, filter.integration);
    if (filter.connector !== undefined) this.#runtime.connectors.get(integration.type, filter.connector);
  }
}

/** Which failed records to list or retry; every field narrows the choice. */
export interface FailureQuery {
  readonly integration?: string;
  readonly connector?: string;
  /** Entities of `integration`/`connector` (both required with ids). */
  readonly ids?: readonly EntityId[];
  /** At most this many (listing only). */
  readonly limit?: number;
}
