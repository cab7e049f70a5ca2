/**
 * The export activities: every side effect of an export run (database reads, remote writes,
 * execution records). Built by a factory so the worker passes in its own database and registries;
 * workflows only import the type of what `createActivities` returns.
 */
import { Context } from '@temporalio/activity';
import { ConfigurationError, PermanentRemoteError } from '../connectors/errors';
import { getIntegration } from '../integrations';
import { type Runtime, getJob } from '../runtime';
import { beginExecutionRecord, finishExecutionRecord } from './executions';
import { classified } from './failures';
import { type SecretResolver, resolveSecret as defaultResolveSecret } from './secrets';
import { planChanges } from './process-step';
import { loadSyncStates, saveFailure, saveRemoved, saveSynced } from './sync-state';
import type {
  ExecutionPlan,
  FinishInput,
  ProcessStepInput,
  ProcessStepOutput,
  ReadStepInput,
  ReadStepOutput,
  RecordFailure,
  RunRef,
  StepInput,
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
  const { db, services, connectors } = runtime;
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
      async (
        input: RunRef & { workflowId: string; runId: string; iteration: number; entityKeys: string[] },
      ): Promise<ExecutionPlan> => {
        const integration = await getIntegration(db, input.integration);
        const expected = connectors.exportWorkflowType(integration.type, input.connector);
        const job = getJob(runtime, input.job);
        if (expected !== job.name) {
          throw new ConfigurationError(`connector '${input.connector}' exports with job '${expected}', not '${job.name}'`);
        }
        await beginExecutionRecord(db, input);
        return { integrationId: integration.id, steps: job.steps.map((s) => ({ name: s.name, title: s.title })) };
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
      const secret = integration.secretRef ? await resolveSecret(integration.secretRef) : undefined;
      const scope = { integrationId: input.integrationId, connector: input.connector };
      const states = await loadSyncStates(db, scope, input.changes.map((c) => c.key));
      const ctx = Context.current();
      const context = { integration, parameters: step.parameters, secret, signal: ctx.cancellationSignal };
      const written: WrittenRecord[] = [];
      const failures: RecordFailure[] = [];
      for (const change of input.changes) {
        const state = states.get(change.key);
        ctx.heartbeat({ key: change.key });
        try {
          if (change.operation === 'delete') {
            if (state && state.status !== 'active') {
              written.push({ key: change.key, remoteId: change.remoteId, operation: state.status === 'deleted' ? 'delete' : 'tombstone' });
              continue;
            }
            const removal = writer.delete ? 'deleted' : 'tombstone';
            if (writer.delete) await writer.delete(change, context);
            await saveRemoved(db, scope, change.key, removal);
            written.push({ key: change.key, remoteId: change.remoteId, operation: removal === 'deleted' ? 'delete' : 'tombstone' });
            continue;
          }
          if (state?.snapshotHash === change.hash && state.remoteId && state.status === 'active') {
            written.push({ key: change.key, remoteId: state.remoteId, operation: change.operation });
            continue;
          }
          const result = await writer.write(change, context);
          await saveSynced(db, scope, {
            key: change.key,
            remoteId: result.remoteId,
            remoteVersion: result.remoteVersion,
            snapshot: change.data,
            hash: change.hash,
          });
          written.push({ key: change.key, remoteId: result.remoteId, operation: change.operation });
        } catch (err) {
          if (!(err instanceof PermanentRemoteError)) throw err;
          await saveFailure(db, scope, change.key, err.message);
          failures.push({ key: change.key, step: step.name, code: err.code, message: err.message });
        }
      }
      return { written, failures };
    }),

    /** Records the outcome of the run. */
    finishExecution: classified(async (input: FinishInput): Promise<void> => {
      await finishExecutionRecord(db, input);
    }),
  };
}

/** The activities, as workflows see them (by type only). */
export type ExportActivities = ReturnType<typeof createActivities>;
