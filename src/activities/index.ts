/**
 * The export activities: every side effect of an export run (database reads, remote writes,
 * execution records). Built by a factory so the worker passes in its own database and registries;
 * workflows only import the type of what `createActivities` returns.
 */
import { Context } from '@temporalio/activity';
import { ConfigurationError, PermanentRemoteError } from '../errors';
import { getIntegration } from '../store/integrations';
import { type Runtime, getJob } from '../runtime';
import { beginExecutionRecord, finishExecutionRecord } from '../store/executions';
import { classified } from './failures';
import { type SecretResolver, resolveSecret as defaultResolveSecret } from '../secrets';
import { planChanges } from './process-step';
import { recordConflicts } from '../store/conflicts';
import { loadSyncStates, saveFailure } from '../store/sync-state';
import { writeBackRemoteIds } from '../store/write-back';
import { toRecordedConflicts, writeChange } from './write-step';
import type {
  ExecutionPlan,
  FinishInput,
  ProcessStepInput,
  ProcessStepOutput,
  ReadStepInput,
  ReadStepOutput,
  RecordFailure,
  RecordedConflict,
  RunRef,
  Skipped,
  StepInput,
  WriteBackInput,
  WriteStepInput,
  WriteStepOutput,
  WrittenRecord,
} from './types';

/** What the activities need. */
export interface ActivityDependencies {
  readonly runtime: Runtime;
  /** Resolves secret references; defaults to `env:` and `file:` references. */
  readonly resolveSecret?: SecretResolver;
}

/** Creates the export activities bound to `deps`. */
export function createActivities(deps: ActivityDependencies) {
  const { runtime } = deps;
  const { store: db, app, services, connectors } = runtime;
  const resolveSecret = deps.resolveSecret ?? defaultResolveSecret;

  const stepOf = (input: StepInput) => {
    const job = getJob(runtime, input.job);
    const step = job.steps.find((s) => s.name === input.step);
    if (!step) throw new ConfigurationError(`job '${job.name}' has no step '${input.step}'`);
    return step;
  };

  return {
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
        };
      },
    ),

    /** Reads the entities by id with the step's reader; missing ones are listed, not thrown. */
    readStep: classified(async (input: ReadStepInput): Promise<ReadStepOutput> => {
      const step = stepOf(input);
      const result = await services.get('reader', step.reader).read(input.ids, step.parameters);
      return { items: result.found.map((f) => ({ key: f.key, entity: f.entity })), missing: result.missing };
    }),

    /**
     * Runs the processor on each entity with its sync state. A changeset equal to what was last
     * pushed is skipped here, so no remote call is made for it; a missing entity that was
     * exported becomes a delete.
     */
    processStep: classified(async (input: ProcessStepInput): Promise<ProcessStepOutput> => {
      const step = stepOf(input);
      const integration = await getIntegration(db, input.integration);
      const scope = { integrationId: input.integrationId, connector: input.connector };
      const states = await loadSyncStates(db, scope, [...input.items.map((i) => i.key), ...input.missing]);
      return planChanges(input, step, integration, services.get('processor', step.processor), states);
    }),

    /**
     * Pushes each change with the step's writer and records the sync state. A permanent rejection
     * fails that record only; a transient one fails the activity so Temporal retries it (changes
     * already pushed by an earlier attempt are recognised by their hash and not sent again).
     */
    writeStep: classified(async (input: WriteStepInput): Promise<WriteStepOutput> => {
      const step = stepOf(input);
      const integration = await getIntegration(db, input.integration);
      const writer = services.get('writer', step.writer);
      const connector = connectors.get(integration.type, input.connector);
      const secret = integration.secretRef ? await resolveSecret(integration.secretRef) : undefined;
      const scope = { integrationId: input.integrationId, connector: input.connector };
      const states = await loadSyncStates(
        db,
        scope,
        input.changes.map((c) => c.key),
      );
      const ctx = Context.current();
      const deps = {
        db,
        scope,
        writer,
        connector,
        context: { integration, parameters: step.parameters, secret, signal: ctx.cancellationSignal },
      };
      const output = {
        written: [] as WrittenRecord[],
        skipped: [] as Skipped[],
        failures: [] as RecordFailure[],
        conflicts: [] as RecordedConflict[],
        warnings: [] as string[],
      };
      for (const change of input.changes) {
        ctx.heartbeat({ key: change.key });
        try {
          const outcome = await writeChange(deps, change, states.get(change.key));
          if (outcome.kind === 'removed') {
            output.skipped.push({ key: change.key, reason: outcome.warning });
            continue;
          }
          if (outcome.conflicts.length > 0) {
            const run = ctx.info.workflowExecution;
            await recordConflicts(
              db,
              { ...input, key: change.key, workflowId: run?.workflowId ?? null, runId: run?.runId ?? null },
              outcome.conflicts,
            );
            output.conflicts.push(...toRecordedConflicts(change.key, outcome.conflicts));
          }
          if (outcome.kind === 'skipped') output.skipped.push({ key: change.key, reason: outcome.reason });
          else {
            output.written.push(outcome.record);
            if (outcome.warning) output.warnings.push(`entity ${change.key}: ${outcome.warning}`);
          }
        } catch (err) {
          // A permanent rejection fails this record only; anything else fails the activity (retried).
          if (!(err instanceof PermanentRemoteError)) throw err;
          await saveFailure(db, scope, change.key, err.message);
          output.failures.push({ key: change.key, step: step.name, code: err.code, message: err.message });
        }
      }
      return output;
    }),

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
      await finishExecutionRecord(db, input);
    }),
  };
}

/** The activities, as workflows see them (by type only). */
export type ExportActivities = ReturnType<typeof createActivities>;
