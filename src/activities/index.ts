/**
 * The export activities: every side effect of an export run (database reads, remote writes,
 * execution records). Built by a factory so the worker passes in its own database and registries;
 * workflows only import the type of what `createActivities` returns.
 */
import { Context } from '@temporalio/activity';
import { ConfigurationError } from '../errors';
import { getIntegration } from '../store/integrations';
import { type Runtime, getJob } from '../runtime';
import { beginExecutionRecord, finishExecutionRecord } from '../store/executions';
import { classified } from './failures';
import { MAX_RECORD_BYTES, jsonBytes } from './payload-limits';
import type { TidesyncMetrics } from '../metrics/metrics';
import { type SecretResolver, resolveSecret as defaultResolveSecret } from '../secrets';
import { deletesByKey, planChanges } from './process-step';
import { loadSyncStates } from '../store/sync-state';
import { saveFailed, resolveFailedNeverExported } from '../store/failures';
import { writeBackRemoteIds } from '../store/write-back';
import { createWriteStep } from './write-activity';
import { createFailureActivities } from './failure-activities';
import { createBulkActivities } from './bulk-activities';
import { createStreamActivities } from './stream-pass';
import type {
  ExecutionPlan,
  FinishInput,
  ProcessStepInput,
  ProcessStepOutput,
  ReadStepInput,
  ReadStepOutput,
  RunRef,
  StepInput,
  WriteBackInput,
} from './types';

/** What the activities need. */
export interface ActivityDependencies {
  readonly runtime: Runtime;
  /** Resolves secret references; defaults to `env:` and `file:` references. */
  readonly resolveSecret?: SecretResolver;
  /** Where exports, records, remote write latency and retries are counted (the runtime's meter). */
  readonly metrics?: TidesyncMetrics;
}

/** Creates the export activities bound to `deps`. */
export function createActivities(deps: ActivityDependencies) {
  const { runtime } = deps;
  const { store: db, app, services, connectors } = runtime;
  const resolveSecret = deps.resolveSecret ?? defaultResolveSecret;
  const { metrics } = deps;

  const stepOf = (input: StepInput) => {
    const job = getJob(runtime, input.job);
    const step = job.steps.find((s) => s.name === input.step);
    if (!step) throw new ConfigurationError(`job '${job.name}' has no step '${input.step}'`);
    return step;
  };

  return countRetries(metrics, {
    /**
     * Checks the run's integration, connector and job, records the execution as running, and
     * returns the steps to run.
     */
    beginExecution: classified(
      async (input: RunRef & { workflowId: string; runId: string; iteration: number; entityKeys: string[] }): Promise<ExecutionPlan> => {
        const integration = await getIntegration(db, input.integration);
        const expected = connectors.exportWorkflowType(integration.type, input.connector);
        const job = getJob(runtime, input.job);
        if (expected !== job.name) {
          throw new ConfigurationError(`connector '${input.connector}' exports with job '${expected}', not '${job.name}'`);
        }
        await beginExecutionRecord(db, input);
        return {
          integrationId: integration.id,
          steps: job.steps.map((s) => ({ name: s.name, title: s.title, writeBack: s.writeBack !== null })),
          retry: { retryWindowMs: integration.retryWindowMs, probeIntervalMs: integration.probeIntervalMs },
        };
      },
    ),

    /** Reads the entities by id with the step's reader; missing ones are listed, not thrown. */
    readStep: classified(async (input: ReadStepInput): Promise<ReadStepOutput> => {
      const step = stepOf(input);
      const result = await services.get('reader', step.reader).read(input.ids, step.parameters);
      const items = result.found.map((f) => {
        // A record too large for a payload travels as its size only; processStep fails it.
        const bytes = jsonBytes(f.entity);
        return bytes > MAX_RECORD_BYTES ? { key: f.key, entity: {}, tooLarge: bytes } : { key: f.key, entity: f.entity };
      });
      return { items, missing: result.missing };
    }),

    /**
     * Runs the processor on each entity with its sync state. A changeset equal to what was last
     * pushed is skipped here, so no remote call is made for it; a missing entity that was
     * exported becomes a delete. A record the processor cannot map is marked `failed`; a failed
     * create whose entity is gone locally needs nothing remote any more and is resolved.
     */
    processStep: classified(async (input: ProcessStepInput): Promise<ProcessStepOutput> => {
      const step = stepOf(input);
      const integration = await getIntegration(db, input.integration);
      const scope = { integrationId: input.integrationId, connector: input.connector };
      const states = await loadSyncStates(db, scope, [...input.items.map((i) => i.key), ...input.missing]);
      const deleteByKey = deletesByKey(services.get('writer', step.writer), integration);
      const planned = await planChanges(input, step, integration, services.get('processor', step.processor), states, { deleteByKey });
      for (const failure of planned.failures) {
        await saveFailed(db, scope, { key: failure.key, error: failure.message, attempts: 0 });
      }
      await resolveFailedNeverExported(
        db,
        scope,
        planned.notFound.filter((key) => states.get(key)?.status === 'failed'),
      );
      return planned;
    }),

    /**
     * Pushes each change with the step's writer and records the sync state; asks the integration's
     * breaker first when the run says so (see `write-activity.ts`).
     */
    writeStep: classified(createWriteStep(runtime, resolveSecret, metrics)),

    ...classifiedAll(createFailureActivities(db)),

    // The bulk export's: begin, plan pages, run a page, keep the execution record.
    ...classifiedAll(createBulkActivities(runtime, resolveSecret, metrics)),

    // The change stream's: its settings (a local activity) and one batch of changes.
    ...classifiedAll(createStreamActivities(runtime, resolveSecret, metrics)),

    /**
     * Writes remote ids of newly created records back into the local table, marked as tidesync's
     * own write so capture triggers do not export the row again.
     */
    writeBackStep: classified(async (input: WriteBackInput): Promise<number> => {
      const step = stepOf(input);
      if (!step.writeBack || input.records.length === 0) return 0;
      return writeBackRemoteIds(app, step, input.records);
    }),

    /** Records the outcome of the run. */
    finishExecution: classified(async (input: FinishInput): Promise<void> => {
      const run = await finishExecutionRecord(db, input);
      if (run && metrics) {
        metrics.exports.add(1, { ...run, outcome: input.status });
        for (const outcome of ['written', 'skipped', 'failed'] as const) {
          if (input.counters[outcome] > 0) metrics.records.add(input.counters[outcome], { ...run, outcome });
        }
      }
    }),
  });
}

/** Counts every attempt after the first of each activity, by activity, integration and connector. */
function countRetries<T extends Record<string, (input: never) => Promise<unknown>>>(
  metrics: TidesyncMetrics | undefined,
  activities: T,
): T {
  if (!metrics) return activities;
  return Object.fromEntries(
    Object.entries(activities).map(([name, fn]) => [
      name,
      async (input: never) => {
        if (Context.current().info.attempt > 1) {
          const run = input as { integration?: unknown; connector?: unknown };
          metrics.retries.add(1, { activity: name, integration: String(run.integration ?? ''), connector: String(run.connector ?? '') });
        }
        return fn(input);
      },
    ]),
  ) as T;
}

/** Wraps every activity of `activities` with `classified`. */
function classifiedAll<T extends Record<string, (...args: never[]) => Promise<unknown>>>(activities: T): T {
  return Object.fromEntries(Object.entries(activities).map(([name, fn]) => [name, classified(fn)])) as T;
}

/** The activities, as workflows see them (by type only). */
export type ExportActivities = ReturnType<typeof createActivities>;
