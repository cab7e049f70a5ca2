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
import { hashSnapshot, idempotencyKey } from './snapshot';
import { loadSyncStates, saveFailure, saveSynced } from './sync-state';
import type {
  ExecutionPlan,
  FinishInput,
  PlannedChange,
  ProcessStepInput,
  ProcessStepOutput,
  ReadStepInput,
  ReadStepOutput,
  RecordFailure,
  RunRef,
  StepInput,
  WriteStepInput,
  WriteStepOutput,
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
      async (input: RunRef & { workflowId: string; runId: string; entityKeys: string[] }): Promise<ExecutionPlan> => {
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
     * pushed is skipped here, so no remote call is made for it.
     */
    processStep: classified(async (input: ProcessStepInput): Promise<ProcessStepOutput> => {
      const step = stepOf(input);
      const integration = await getIntegration(db, input.integration);
      const processor = services.get('processor', step.processor);
      const scope = { integrationId: input.integrationId, connector: input.connector };
      const states = await loadSyncStates(db, scope, input.items.map((i) => i.key));
      const changes: PlannedChange[] = [];
      const skipped: Array<{ key: string; reason: string }> = [];
      const failures: RecordFailure[] = [];
      for (const item of input.items) {
        const state = states.get(item.key) ?? null;
        let result;
        try {
          result = await processor.process(item.entity, { integration, parameters: step.parameters, state });
        } catch (err) {
          // A processor that cannot map one record must not block the others.
          failures.push({ key: item.key, step: step.name, code: 'processor_failed', message: (err as Error).message });
          continue;
        }
        if (result.kind === 'skip') {
          skipped.push({ key: item.key, reason: result.reason });
          continue;
        }
        const hash = hashSnapshot(result.data);
        if (state?.remoteId && state.snapshotHash === hash) {
          skipped.push({ key: item.key, reason: 'unchanged since the last export' });
          continue;
        }
        changes.push({
          key: item.key,
          operation: state?.remoteId ? 'update' : 'create',
          data: result.data,
          remoteId: state?.remoteId ?? null,
          hash,
          idempotencyKey: idempotencyKey({
            integrationId: input.integrationId,
            connector: input.connector,
            step: step.name,
            entityKey: item.key,
            previousHash: state?.snapshotHash ?? null,
            hash,
          }),
        });
      }
      return { changes, skipped, failures };
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
      const written: Array<{ key: string; remoteId: string; operation: 'create' | 'update' }> = [];
      const failures: RecordFailure[] = [];
      for (const change of input.changes) {
        const state = states.get(change.key);
        if (state?.snapshotHash === change.hash && state.remoteId) {
          written.push({ key: change.key, remoteId: state.remoteId, operation: change.operation });
          continue;
        }
        ctx.heartbeat({ key: change.key });
        try {
          const result = await writer.write(change, {
            integration,
            parameters: step.parameters,
            secret,
            signal: ctx.cancellationSignal,
          });
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
      return { written, skipped: [], failures };
    }),

    /** Records the outcome of the run. */
    finishExecution: classified(async (input: FinishInput): Promise<void> => {
      await finishExecutionRecord(db, input);
    }),
  };
}

/** The activities, as workflows see them (by type only). */
export type ExportActivities = ReturnType<typeof createActivities>;
