/**
 * The write activity: asks the integration's breaker (when the run knows the failure lifecycle),
 * pushes each change with the step's writer, reports every remote call's outcome to the breaker,
 * and records the sync state. A permanent rejection marks that record `failed`; a transient
 * failure fails the activity so it is retried (changes an earlier attempt pushed are recognised by
 * their hash and not sent again).
 */
import { Context } from '@temporalio/activity';
import { ConfigurationError, IntegrationDegradedError, PermanentRemoteError } from '../errors';
import { type Runtime, getJob } from '../runtime';
import { type SecretResolver } from '../secrets';
import { recordConflicts } from '../store/conflicts';
import { saveFailed } from '../store/failures';
import { checkWrite, recordRemoteFailure, recordRemoteSuccess } from '../store/integration-health';
import { getIntegration } from '../store/integrations';
import { loadSyncStates } from '../store/sync-state';
import { formatDuration } from '../retry-policy';
import { toActivityFailure } from './failures';
import type { RecordFailure, RecordedConflict, Skipped, WriteStepInput, WriteStepOutput, WrittenRecord } from './types';
import type { TidesyncMetrics } from '../metrics/metrics';
import { watchRemote } from './watch-remote';
import { toRecordedConflicts, writeChange } from './write-step';

/** Builds the `writeStep` activity. */
export function createWriteStep(runtime: Runtime, resolveSecret: SecretResolver, metrics?: TidesyncMetrics) {
  const { store: db, services, connectors } = runtime;

  return async (input: WriteStepInput): Promise<WriteStepOutput> => {
    const job = getJob(runtime, input.job);
    const step = job.steps.find((s) => s.name === input.step);
    if (!step) throw new ConfigurationError(`job '${job.name}' has no step '${input.step}'`);
    const integration = await getIntegration(db, input.integration);
    const ctx = Context.current();
    const attempt = ctx.info.attempt;

    if (input.gate) {
      // Only the first attempt of the probe `mayWrite` granted may write to a degraded remote.
      const verdict = await checkWrite(db, integration.id, input.gate.probe && attempt === 1);
      if (!verdict.allowed) {
        const refusal = new IntegrationDegradedError(
          `integration '${integration.name}' is degraded (the remote keeps failing: ${verdict.lastError ?? 'unknown error'}); ` +
            `next probe in ${formatDuration(Math.max(verdict.retryInMs, 1))}`,
          verdict.retryInMs,
        );
        // The attempt number tells the workflow how many earlier attempts reached the remote.
        throw toActivityFailure(refusal, { attempt });
      }
    }

    const writer = watchRemote(services.get('writer', step.writer), {
      answered: () => recordRemoteSuccess(db, integration.id),
      failed: async (err) => {
        await recordRemoteFailure(db, integration, err instanceof Error ? err.message : String(err));
      },
      timed: (ms) => metrics?.remoteWriteMs.record(Math.round(ms), { integration: integration.name, connector: input.connector }),
    });
    const connector = connectors.get(integration.type, input.connector);
    const secret = integration.secretRef ? await resolveSecret(integration.secretRef) : undefined;
    const scope = { integrationId: input.integrationId, connector: input.connector };
    const states = await loadSyncStates(
      db,
      scope,
      input.changes.map((c) => c.key),
    );
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
        // Anything but a permanent rejection fails the activity (retried); the workflow learns
        // from the details which attempt and which entity it was.
        if (!(err instanceof PermanentRemoteError)) throw toActivityFailure(err, { attempt, key: change.key });
        // A permanent rejection fails this record only, visibly: status `failed` with the remote's message.
        await saveFailed(db, scope, { key: change.key, error: err.message, attempts: attempt });
        output.failures.push({ key: change.key, step: step.name, code: err.code, message: err.message });
      }
    }
    return output;
  };
}
