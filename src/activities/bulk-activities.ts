/**
 * The bulk export's activities: `bulkBegin` checks the export and counts its rows, `bulkPlan`
 * finds where the next pages end (one cheap query over the identifier), `bulkPage` runs one page
 * (see `bulk-page.ts`), `bulkRecord` keeps the export's execution record up to date.
 */
import { ConfigurationError } from '../errors';
import type { TidesyncMetrics } from '../metrics/metrics';
import { type Runtime, getJob } from '../runtime';
import type { SecretResolver } from '../secrets';
import { beginExecutionRecord, recordBulkExecution } from '../store/executions';
import { getIntegration, refusalReason } from '../store/integrations';
import { runBulkPage } from './bulk-page';
import type {
  BulkBeginInput,
  BulkBeginOutput,
  BulkPageInput,
  BulkPageOutput,
  BulkPlanInput,
  BulkRecordInput,
  BulkScope,
} from './bulk-types';
import type { PagePlan } from '../connectors/connector';
import type { JobDefinition } from '../jobs/definition';
import type { EntityId } from '../entity-id';
import { fitPageSize } from '../workflows/options';

/** How a bulk export's scope reads in the execution record (`entity_ids`). */
export function describeScope(scope: BulkScope): string {
  if ('ids' in scope) return `ids (${scope.ids.length})`;
  if ('filter' in scope) return `filter ${scope.filter}`;
  return 'all';
}

/** Builds the bulk export's activities. */
export function createBulkActivities(runtime: Runtime, resolveSecret: SecretResolver, metrics?: TidesyncMetrics) {
  const db = runtime.store;
  return {
    /** Checks the integration, connector, job and scope, counts the rows, and records the export as running. */
    async bulkBegin(input: BulkBeginInput): Promise<BulkBeginOutput> {
      const integration = await getIntegration(db, input.integration);
      const job = getJob(runtime, runtime.connectors.exportWorkflowType(integration.type, input.connector));
      if (job.name !== input.job)
        throw new ConfigurationError(`connector '${input.connector}' exports with job '${job.name}', not '${input.job}'`);
      const total = 'ids' in input.scope ? input.scope.ids.length : await countScope(runtime, job, input.scope);
      const { planFirst, ...begun } = input;
      await beginExecutionRecord(db, { ...begun, iteration: 1, entityKeys: [describeScope(input.scope)] });
      const refusal = refusalReason(integration);
      const output: BulkBeginOutput = {
        integrationId: integration.id,
        refusal,
        total,
        retry: { retryWindowMs: integration.retryWindowMs, probeIntervalMs: integration.probeIntervalMs },
      };
      if (!planFirst || refusal !== null || 'ids' in input.scope) return output;
      const pageSize = planFirst.fit ? fitPageSize(total, planFirst.parallelism, planFirst.pageSize) : planFirst.pageSize;
      const filter = 'filter' in input.scope ? input.scope.filter : undefined;
      const plan = await planPages(runtime, job, { after: null, filter, pageSize, pages: planFirst.pages });
      return { ...output, firstPages: { pageSize, plan } };
    },

    /** The ids ending the next pages after a cursor (see `Reader.planPages`). */
    async bulkPlan(input: BulkPlanInput): Promise<PagePlan> {
      return planPages(runtime, getJob(runtime, input.job), input);
    },

    /** One page: read, process, write, save (see `bulk-page.ts`). */
    async bulkPage(input: BulkPageInput): Promise<BulkPageOutput> {
      return runBulkPage(runtime, resolveSecret, metrics, input);
    },

    /** Keeps the execution record of a bulk export: counters so far, or its outcome. */
    async bulkRecord(input: BulkRecordInput): Promise<void> {
      const run = await recordBulkExecution(db, input);
      if (run && metrics && input.finished) {
        metrics.exports.add(1, { ...run, outcome: input.status });
        for (const outcome of ['written', 'skipped', 'failed'] as const) {
          if (input.counters[outcome] > 0) metrics.records.add(input.counters[outcome], { ...run, outcome });
        }
      }
    },
  };
}

/** The first step and its reader, which must page (`readRange`, `planPages`) for scopes other than ids. */
export function pagedReader(runtime: Pick<Runtime, 'services'>, job: JobDefinition) {
  const step = job.steps[0];
  if (!step) throw new ConfigurationError(`job '${job.name}' has no steps`);
  const reader = runtime.services.get('reader', step.reader);
  if (!reader.readRange || !reader.planPages) {
    throw new ConfigurationError(
      `reader '${step.reader}' of job '${job.name}' cannot page through a table (it has no readRange and planPages; ` +
        `entity.by_id has them): export a list of ids instead`,
    );
  }
  return { step, reader };
}

/** Where the next pages after a cursor end, by the first step's reader. */
function planPages(
  runtime: Pick<Runtime, 'services'>,
  job: JobDefinition,
  request: { readonly after: EntityId | null; readonly filter?: string | undefined; readonly pageSize: number; readonly pages: number },
): Promise<PagePlan> {
  const { step, reader } = pagedReader(runtime, job);
  const plan = reader.planPages;
  if (!plan) throw new ConfigurationError(`reader '${step.reader}' cannot plan pages`);
  const { after, filter, pageSize, pages } = request;
  return plan.call(reader, { after, filter, pageSize, pages }, step.parameters);
}

/** Rows in a scope: the whole table or a named filter (checked: an unknown name lists the declared ones). */
async function countScope(runtime: Runtime, job: JobDefinition, scope: Exclude<BulkScope, { ids: unknown }>): Promise<number> {
  const { step, reader } = pagedReader(runtime, job);
  const filter = 'filter' in scope ? scope.filter : undefined;
  return reader.countRows ? reader.countRows({ filter }, step.parameters) : 0;
}
