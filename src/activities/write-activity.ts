/**
 * The write activity: asks the integration's breaker (when the run knows the failure lifecycle),
 * pushes each change with the step's writer under the entity's lock (from its row and sync state
 * read again, see `locked-write.ts`), reports every remote call's outcome to the breaker, and
 * records the sync state. A permanent rejection marks that record `failed`; a transient failure
 * fails the activity so it is retried (changes an earlier attempt pushed are recognised by their
 * hash and not sent again).
 */
import { Context } from '@temporalio/activity';
import { parseEntityId } from '../entity-id';
import type { TidesyncMetrics } from '../metrics/metrics';
import type { Runtime } from '../runtime';
import type { SecretResolver } from '../secrets';
import { toActivityFailure } from './failures';
import { type LockedWriteContext, type RecordOutcome, writeOneLocked } from './locked-write';
import { deletesByKey } from './process-step';
import type { RecordFailure, RecordedConflict, Skipped, WriteStepInput, WriteStepOutput, WrittenRecord } from './types';
import { openWriteSession } from './write-session';

/** Builds the `writeStep` activity. */
export function createWriteStep(runtime: Runtime, resolveSecret: SecretResolver, metrics?: TidesyncMetrics) {
  return async (input: WriteStepInput): Promise<WriteStepOutput> => {
    const ctx = Context.current();
    const attempt = ctx.info.attempt;
    const { step, integration, connector, writer, secret } = await openWriteSession(runtime, resolveSecret, metrics, input);
    const scope = { integrationId: input.integrationId, connector: input.connector };
    const run = ctx.info.workflowExecution;
    const locked: LockedWriteContext = {
      runtime,
      run: { job: input.job, integration: input.integration, connector: input.connector },
      step,
      integration,
      write: {
        db: runtime.store,
        scope,
        writer,
        connector,
        context: { integration, parameters: step.parameters, secret, signal: ctx.cancellationSignal },
      },
      plan: { deleteByKey: deletesByKey(writer, integration) },
      attempt,
      workflow: run ? { workflowId: run.workflowId, runId: run.runId } : null,
    };
    const output = {
      written: [] as WrittenRecord[],
      skipped: [] as Skipped[],
      failures: [] as RecordFailure[],
      conflicts: [] as RecordedConflict[],
      warnings: [] as string[],
    };
    for (const change of input.changes) {
      // Local activities (runs patched with `local-pass`) cannot heartbeat.
      if (!ctx.info.isLocal) ctx.heartbeat({ key: change.key });
      let outcome: RecordOutcome;
      try {
        outcome = await writeOneLocked(locked, change, parseEntityId(change.key));
      } catch (err) {
        // Anything but a permanent rejection (which fails its record only) fails the activity
        // (retried); the workflow learns from the details which attempt and which entity it was.
        throw toActivityFailure(err, { attempt, key: change.key });
      }
      if (outcome.kind === 'failed') {
        output.failures.push(outcome.failure);
        continue;
      }
      output.conflicts.push(...outcome.conflicts);
      if (outcome.kind === 'skipped') output.skipped.push({ key: change.key, reason: outcome.reason });
      else {
        output.written.push(outcome.record);
        if (outcome.warning) output.warnings.push(`entity ${change.key}: ${outcome.warning}`);
      }
    }
    return output;
  };
}
