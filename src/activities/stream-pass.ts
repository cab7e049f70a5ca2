/**
 * The change stream's activities: `streamBegin` (a local activity) reads what a stream run needs
 * of its integration; `streamPass` exports one batch of changed entities as one activity, the way
 * a bulk export's page does (`bulk-page.ts`: one read query, one sync-state query, the processor
 * per entity, unchanged rows skipped, the writes under each entity's lock, with `writeBatch` when
 * the writer has it), and keeps the pass's job execution record, which names its entities.
 */
import { Context } from '@temporalio/activity';
import { encodeEntityId, type EntityId } from '../entity-id';
import { ConfigurationError } from '../errors';
import type { TidesyncMetrics } from '../metrics/metrics';
import type { RetrySettings } from '../retry-policy';
import { type Runtime, getJob } from '../runtime';
import type { SecretResolver } from '../secrets';
import { beginExecutionRecord, finishExecutionRecord } from '../store/executions';
import { getIntegration } from '../store/integrations';
import { runBulkPage } from './bulk-page';
import type { BulkPageOutput } from './bulk-types';
import type { RunRef } from './types';

/** What a stream run needs of its integration. */
export interface StreamSettings {
  readonly integrationId: number;
  readonly retry: RetrySettings;
}

/** One pass of a change stream. */
export interface StreamPassInput extends RunRef {
  readonly ids: readonly EntityId[];
  /** The pass's number in its run (its execution record's iteration). */
  readonly pass: number;
  /** Ask the breaker first (see `retry-window.ts`). */
  readonly gate?: { readonly probe: boolean };
  /** The retry window ran out: keep the pass's changes as `failed` with this reason instead. */
  readonly giveUp?: { readonly error: string; readonly attempts: number };
}

/** Builds the change stream's activities. */
export function createStreamActivities(runtime: Runtime, resolveSecret: SecretResolver, metrics?: TidesyncMetrics) {
  const db = runtime.store;
  return {
    /** Checks the stream's job against its connector and returns its integration's id and retry settings. */
    async streamBegin(input: RunRef): Promise<StreamSettings> {
      const integration = await getIntegration(db, input.integration);
      const job = getJob(runtime, runtime.connectors.exportWorkflowType(integration.type, input.connector));
      if (job.name !== input.job) {
        throw new ConfigurationError(`connector '${input.connector}' exports with job '${job.name}', not '${input.job}'`);
      }
      return {
        integrationId: integration.id,
        retry: { retryWindowMs: integration.retryWindowMs, probeIntervalMs: integration.probeIntervalMs },
      };
    },

    /** Exports one batch (see the module comment); a retried pass writes nothing twice. */
    async streamPass(input: StreamPassInput): Promise<BulkPageOutput> {
      const ctx = Context.current();
      const run = ctx.info.workflowExecution;
      if (!run) throw new ConfigurationError('streamPass runs only inside a change stream workflow');
      const record = { runId: run.runId, iteration: input.pass };
      const integration = await getIntegration(db, input.integration);
      await beginExecutionRecord(db, {
        ...input,
        ...record,
        workflowId: run.workflowId,
        entityKeys: input.ids.map((id) => encodeEntityId(id)),
      });
      let output: BulkPageOutput;
      try {
        output = await runBulkPage(runtime, resolveSecret, metrics, {
          job: input.job,
          integration: input.integration,
          connector: input.connector,
          integrationId: integration.id,
          bulkId: run.workflowId,
          mode: 'changed',
          startedAt: ctx.info.scheduledTimestampMs,
          page: { ids: input.ids },
          ...(input.gate ? { gate: input.gate } : {}),
          ...(input.giveUp ? { giveUp: input.giveUp } : {}),
        });
      } catch (err) {
        // A configuration error fails the pass for good: its record says why. Others are retried.
        if (err instanceof ConfigurationError) {
          await finishExecutionRecord(db, {
            ...record,
            status: 'failed',
            counters: { read: 0, processed: 0, written: 0, skipped: 0, failed: 0 },
            warnings: [],
            failures: [],
            conflicts: [],
            failedStep: getJob(runtime, input.job).steps[0]?.name ?? null,
            error: err.message,
          });
        }
        throw err;
      }
      const status = output.counters.failed > 0 ? 'completed_with_failures' : 'completed';
      await finishExecutionRecord(db, {
        ...record,
        status,
        counters: output.counters,
        warnings: [],
        failures: output.failures,
        conflicts: [],
        failedStep: null,
        error: null,
      });
      if (metrics) {
        const labels = { integration: input.integration, connector: input.connector };
        metrics.exports.add(1, { ...labels, outcome: status });
        for (const outcome of ['written', 'skipped', 'failed'] as const) {
          if (output.counters[outcome] > 0) metrics.records.add(output.counters[outcome], { ...labels, outcome });
        }
      }
      return output;
    },
  };
}
