/**
 * Bulk exports from the caller's side: start one (checked first: an unknown integration,
 * connector or filter, a bad id, a page size out of range is refused at the call), read its
 * progress, pause, resume or cancel it, wait for it, and list them. `TidesyncClient` exposes these.
 */
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import type { BulkMode, BulkScope } from './activities/bulk-types';
import { pagedReader } from './activities/bulk-activities';
import type { EntityId } from './entity-id';
import { ConfigurationError, InvalidEntityIdError } from './errors';
import { type Runtime, getJob } from './runtime';
import { CONNECTOR_ATTRIBUTE, INTEGRATION_ATTRIBUTE, STATUS_ATTRIBUTE } from './search-attributes';
import { getIntegration, refusalReason } from './store/integrations';
import {
  BULK_EXPORT_WORKFLOW,
  type BulkExportInput,
  type BulkExportResult,
  type BulkProgress,
  cancelUpdate,
  pauseUpdate,
  progressQuery,
  resumeUpdate,
} from './workflows/bulk-definitions';
import { DEFAULT_BULK_PAGE_SIZE, DEFAULT_BULK_PARALLELISM } from './workflows/options';

/** The largest page a bulk export takes: a page is one activity, and its rows sit in memory at once. */
export const MAX_BULK_PAGE_SIZE = 10_000;
/** The most pages one bulk export runs at once (each holds a connection while it writes). */
export const MAX_BULK_PARALLELISM = 64;
/** The most ids a bulk export by ids takes: they travel in its input (declare a filter for more). */
export const MAX_BULK_IDS = 10_000;

/** What to export in bulk. */
export interface BulkExportRequest {
  readonly integration: string;
  readonly connector: string;
  /** `changed` (default): write only what differs from the last export; `all`: every row again. */
  readonly mode?: BulkMode;
  /** Every row (default), a list of ids, or a filter declared in the job (`{ filter: 'active' }`). */
  readonly scope?: BulkScope;
  /**
   * Rows per page (one activity each). Default: fitted to the rows counted (`fitPageSize`), from
   * `MIN_FITTED_BULK_PAGE_SIZE` (500) to `DEFAULT_BULK_PAGE_SIZE` (2,500), in whole waves of pages.
   */
  readonly pageSize?: number;
  /** Pages in flight at once; default 4. */
  readonly parallelism?: number;
  /** The last part of the workflow id (default: the start time), e.g. to make a start idempotent. */
  readonly id?: string;
  /** Pages per run before continue-as-new (tests use small values); default 500. */
  readonly pagesPerRun?: number;
}

/** A started bulk export. */
export interface StartedBulkExport {
  readonly workflowId: string;
  readonly runId: string;
}

/** A bulk export as `listBulkExports` reports it. */
export interface BulkExportSummary {
  readonly workflowId: string;
  readonly integration: string | undefined;
  readonly connector: string | undefined;
  /** tidesync's status (`running`, `paused`, `completed`...), from the run's search attribute. */
  readonly status: string | undefined;
  /** Temporal's status of the latest run (`RUNNING`, `COMPLETED`, `FAILED`...). */
  readonly execution: string;
  readonly startTime: Date;
  readonly closeTime: Date | undefined;
}

/** The workflow id of a bulk export: `bulk/<integration>/<connector>/<id or start time>`. */
export function bulkWorkflowId(integration: string, connector: string, id: string = new Date().toISOString()): string {
  return `bulk/${integration}/${connector}/${id}`;
}

/** Checks a request and turns it into the workflow's input; errors name the bad value. */
export async function bulkExportInput(
  runtime: Pick<Runtime, 'connectors' | 'jobs' | 'services' | 'store'>,
  request: BulkExportRequest,
): Promise<BulkExportInput> {
  const integration = await getIntegration(runtime.store, request.integration);
  const refusal = refusalReason(integration);
  if (refusal) throw new ConfigurationError(`bulk export refused: ${refusal}`);
  const job = getJob(runtime, runtime.connectors.exportWorkflowType(integration.type, request.connector));
  const mode = request.mode ?? 'changed';
  if (mode !== 'changed' && mode !== 'all')
    throw new ConfigurationError(`bulk export mode '${String(mode)}' is not valid: use changed or all`);
  const pageSize = checkCount('page size', request.pageSize ?? DEFAULT_BULK_PAGE_SIZE, MAX_BULK_PAGE_SIZE);
  const parallelism = checkCount('parallelism', request.parallelism ?? DEFAULT_BULK_PARALLELISM, MAX_BULK_PARALLELISM);
  const scope = request.scope ?? { all: true };
  if ('ids' in scope) {
    await checkIds(runtime, job.steps[0], scope.ids);
  } else {
    const { step, reader } = pagedReader(runtime, job);
    if ('filter' in scope) {
      const declared = reader.filterNames?.(step.parameters) ?? [];
      if (!declared.includes(scope.filter)) {
        throw new ConfigurationError(
          `unknown filter '${scope.filter}' for connector '${request.connector}' (declared in job '${job.name}', step '${step.name}': ${declared.join(', ') || 'none'})`,
        );
      }
    }
  }
  return {
    integration: integration.name,
    connector: request.connector,
    job: job.name,
    mode,
    scope,
    pageSize,
    ...(request.pageSize === undefined ? { fitPageSize: true } : {}),
    parallelism,
    ...(request.pagesPerRun !== undefined ? { pagesPerRun: checkCount('pages per run', request.pagesPerRun, 100_000) } : {}),
  };
}

function checkCount(what: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 1 || value > max)
    throw new ConfigurationError(`${what} ${value} is not valid: use a whole number from 1 to ${max}`);
  return value;
}

async function checkIds(
  runtime: Pick<Runtime, 'services'>,
  step: { reader: string; parameters: Record<string, unknown> } | undefined,
  ids: readonly EntityId[],
): Promise<void> {
  if (ids.length === 0) throw new ConfigurationError('a bulk export by ids needs at least one id');
  if (ids.length > MAX_BULK_IDS) {
    throw new ConfigurationError(
      `a bulk export by ids takes at most ${MAX_BULK_IDS} ids (got ${ids.length}): declare a filter in the job instead`,
    );
  }
  const reader = step && runtime.services.has('reader', step.reader) ? runtime.services.get('reader', step.reader) : undefined;
  const problems = (await reader?.checkIds?.(ids, step?.parameters ?? {})) ?? [];
  const bad = problems.filter((p): p is string => p !== null);
  if (bad.length > 0)
    throw new InvalidEntityIdError(
      bad.length === 1 ? (bad[0] as string) : `${bad.length} entity ids are not valid: ${bad.slice(0, 3).join('; ')}`,
    );
}

/** Starts bulk exports and steers them. */
export class BulkExports {
  readonly #runtime: Pick<Runtime, 'connectors' | 'jobs' | 'services' | 'store'>;
  readonly #temporal: Client;
  readonly #taskQueue: string;

  constructor(runtime: Pick<Runtime, 'connectors' | 'jobs' | 'services' | 'store'>, temporal: Client, taskQueue: string) {
    this.#runtime = runtime;
    this.#temporal = temporal;
    this.#taskQueue = taskQueue;
  }

  /** Starts a bulk export (see `BulkExportRequest`). */
  async start(request: BulkExportRequest): Promise<StartedBulkExport> {
    const input = await bulkExportInput(this.#runtime, request);
    const workflowId = bulkWorkflowId(input.integration, input.connector, request.id);
    const handle = await this.#temporal.workflow.start(BULK_EXPORT_WORKFLOW, {
      taskQueue: this.#taskQueue,
      workflowId,
      args: [input],
      ...bulkWorkflowLabels(input),
    });
    return { workflowId, runId: handle.firstExecutionRunId };
  }

  /** Where a bulk export stands: from the running workflow, or from its result once it ended. */
  async progress(workflowId: string): Promise<BulkProgress> {
    const handle = this.#handle(workflowId);
    const description = await handle.describe();
    if (description.status.name === 'RUNNING') return handle.query(progressQuery);
    const result = (await handle.result()) as BulkExportResult;
    return {
      status: result.status,
      mode: result.mode,
      done: result.done,
      total: result.total,
      written: result.counters.written,
      skipped: result.counters.skipped,
      failed: result.counters.failed,
      pages: result.pages,
      rate: bulkRate(result),
      etaSeconds: 0,
      startedAt: description.startTime.toISOString(),
      runs: result.runs,
    };
  }

  /** Stops starting pages; those in flight finish. */
  pause(workflowId: string): Promise<BulkProgress> {
    return this.#handle(workflowId).executeUpdate(pauseUpdate);
  }

  /** Starts pages again after a pause. */
  resume(workflowId: string): Promise<BulkProgress> {
    return this.#handle(workflowId).executeUpdate(resumeUpdate);
  }

  /** Stops for good after the pages in flight; the record says `cancelled`, with what was done. */
  cancel(workflowId: string, reason?: string): Promise<BulkProgress> {
    return this.#handle(workflowId).executeUpdate(cancelUpdate, { args: [reason ?? null] });
  }

  /** Waits for a bulk export to end (following continue-as-new) and returns its result. */
  async result(workflowId: string): Promise<BulkExportResult> {
    return (await this.#handle(workflowId).result()) as BulkExportResult;
  }

  /** Bulk exports, newest first (the latest run of each), optionally of one integration or only running. */
  async list(options: { integration?: string; running?: boolean; limit?: number } = {}): Promise<BulkExportSummary[]> {
    const clauses = [`WorkflowType = '${BULK_EXPORT_WORKFLOW}'`, `ExecutionStatus != 'ContinuedAsNew'`];
    if (options.integration !== undefined) clauses.push(`TidesyncIntegration = '${options.integration.replace(/'/g, "''")}'`);
    if (options.running) clauses.push(`ExecutionStatus = 'Running'`);
    const out: BulkExportSummary[] = [];
    for await (const e of this.#temporal.workflow.list({ query: clauses.join(' AND ') })) {
      out.push({
        workflowId: e.workflowId,
        integration: e.typedSearchAttributes.get(INTEGRATION_ATTRIBUTE),
        connector: e.typedSearchAttributes.get(CONNECTOR_ATTRIBUTE),
        status: e.typedSearchAttributes.get(STATUS_ATTRIBUTE),
        execution: e.status.name,
        startTime: e.startTime,
        closeTime: e.closeTime,
      });
      if (out.length >= (options.limit ?? 100)) break;
    }
    return out;
  }

  #handle(workflowId: string) {
    if (!workflowId.startsWith('bulk/'))
      throw new ConfigurationError(`'${workflowId}' is not a bulk export's workflow id (bulk/<integration>/<connector>/...)`);
    return this.#temporal.workflow.getHandle(workflowId);
  }
}

/** The summary, details and search attributes every bulk export run starts with. */
export function bulkWorkflowLabels(input: BulkExportInput) {
  const scope =
    'ids' in input.scope ? `${input.scope.ids.length} ids` : 'filter' in input.scope ? `filter ${input.scope.filter}` : 'all rows';
  return {
    staticSummary: `Bulk export ${input.connector} to ${input.integration} (${input.mode}, ${scope})`,
    staticDetails:
      `Job \`${input.job}\`, integration \`${input.integration}\`, connector \`${input.connector}\`: ${scope}, mode \`${input.mode}\`, ` +
      `pages of ${input.fitPageSize ? `up to ${input.pageSize} (fitted to the rows counted)` : input.pageSize}, ${input.parallelism} at once. Query \`progress\`; updates \`pause\`, \`resume\`, \`cancel\`.`,
    typedSearchAttributes: [
      { key: INTEGRATION_ATTRIBUTE, value: input.integration },
      { key: CONNECTOR_ATTRIBUTE, value: input.connector },
      { key: STATUS_ATTRIBUTE, value: 'scheduled' },
    ],
  };
}

/** True when `err` says the workflow does not exist. */
export function isUnknownWorkflow(err: unknown): boolean {
  return err instanceof WorkflowNotFoundError;
}

/** Rows a second while a finished export ran: paused time left out (older results only know the whole duration). */
export function bulkRate(result: BulkExportResult): number {
  const ms = result.activeMs ?? result.durationMs;
  return ms > 0 ? Math.round((result.done / ms) * 10_000) / 10 : 0;
}
