/**
 * What the application calls: schedule exports of entities and read their outcome. Unknown
 * integrations, connectors and jobs are rejected here, at the call, never as a stuck workflow.
 */
import { type Client, WorkflowFailedError } from '@temporalio/client';
import type { Kysely } from 'kysely';
import type { TidesyncDatabase } from './db/schema';
import { type EntityId, encodeEntityId } from './entity-id';
import { getIntegration } from './integrations';
import { type JobExecution, listExecutions } from './activities/executions';
import { type Runtime, getJob } from './runtime';
import { CONNECTOR_ATTRIBUTE, ENTITY_ID_ATTRIBUTE, INTEGRATION_ATTRIBUTE, STATUS_ATTRIBUTE } from './search-attributes';
import type { ExportInput, ExportResult } from './workflows';

/** The task queue tidesync's workers poll unless configured otherwise. */
export const DEFAULT_TASK_QUEUE = 'tidesync';

/** One entity to export. */
export interface ExportRequest {
  readonly integration: string;
  readonly connector: string;
  readonly id: EntityId;
}

/** A started export run. */
export interface ScheduledExport {
  readonly workflowId: string;
  readonly runId: string;
  readonly job: string;
  readonly key: string;
}

/** The outcome of one export run, as `waitForExport` reports it. */
export type ExportOutcome =
  | ({ readonly ok: true; readonly workflowId: string } & ExportResult)
  | { readonly ok: false; readonly workflowId: string; readonly error: string };

/** Options of `TidesyncClient`. */
export interface TidesyncClientOptions {
  readonly runtime: Pick<Runtime, 'connectors' | 'jobs'>;
  readonly db: Kysely<TidesyncDatabase>;
  readonly temporal: Client;
  readonly taskQueue?: string;
}

/** The workflow id of an entity's export: one per entity, readable in the Temporal UI. */
export function exportWorkflowId(integration: string, connector: string, id: EntityId): string {
  return `export/${integration}/${connector}/${encodeEntityId(id)}`;
}

/** Schedules exports and reads their results. */
export class TidesyncClient {
  readonly #runtime: Pick<Runtime, 'connectors' | 'jobs'>;
  readonly #db: Kysely<TidesyncDatabase>;
  readonly #temporal: Client;
  readonly #taskQueue: string;

  constructor(options: TidesyncClientOptions) {
    this.#runtime = options.runtime;
    this.#db = options.db;
    this.#temporal = options.temporal;
    this.#taskQueue = options.taskQueue ?? DEFAULT_TASK_QUEUE;
  }

  /**
   * Starts the export of one entity. If an export of the same entity is already running, returns
   * that run instead of starting a second one.
   */
  async scheduleExport(request: ExportRequest): Promise<ScheduledExport> {
    const [scheduled] = await this.scheduleExports({ ...request, ids: [request.id] });
    return scheduled as ScheduledExport;
  }

  /** Starts one export run per id (each entity has its own workflow). */
  async scheduleExports(request: {
    integration: string;
    connector: string;
    ids: readonly EntityId[];
  }): Promise<ScheduledExport[]> {
    const integration = await getIntegration(this.#db, request.integration);
    const job = getJob(this.#runtime, this.#runtime.connectors.exportWorkflowType(integration.type, request.connector));
    return Promise.all(
      request.ids.map(async (id) => {
        const key = encodeEntityId(id);
        const workflowId = exportWorkflowId(integration.name, request.connector, id);
        const input: ExportInput = { integration: integration.name, connector: request.connector, ids: [id] };
        const handle = await this.#temporal.workflow.start(job.name, {
          taskQueue: this.#taskQueue,
          workflowId,
          args: [input],
          workflowIdConflictPolicy: 'USE_EXISTING',
          staticSummary: `Export ${request.connector} ${key} to ${integration.name}`,
          staticDetails: `Job **${job.title}** (\`${job.name}\`), integration \`${integration.name}\` (${integration.type}), connector \`${request.connector}\`, entity \`${key}\`.`,
          typedSearchAttributes: [
            { key: INTEGRATION_ATTRIBUTE, value: integration.name },
            { key: CONNECTOR_ATTRIBUTE, value: request.connector },
            { key: ENTITY_ID_ATTRIBUTE, value: key },
            { key: STATUS_ATTRIBUTE, value: 'scheduled' },
          ],
        });
        return { workflowId, runId: handle.firstExecutionRunId, job: job.name, key };
      }),
    );
  }

  /** Waits for an export run to finish and reports its outcome; a failed run is an outcome too. */
  async waitForExport(scheduled: Pick<ScheduledExport, 'workflowId' | 'runId'>): Promise<ExportOutcome> {
    const handle = this.#temporal.workflow.getHandle(scheduled.workflowId, scheduled.runId);
    try {
      const result = (await handle.result()) as ExportResult;
      return { ok: true, workflowId: scheduled.workflowId, ...result };
    } catch (err) {
      if (!(err instanceof WorkflowFailedError)) throw err;
      return { ok: false, workflowId: scheduled.workflowId, error: err.cause?.message ?? err.message };
    }
  }

  /** Recent job execution records, newest first. */
  async recentExecutions(options: { limit?: number; integration?: string } = {}): Promise<JobExecution[]> {
    return listExecutions(this.#db, options);
  }
}
