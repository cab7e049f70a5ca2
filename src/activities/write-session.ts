/**
 * What every writing activity does first (the per-entity `writeStep` and the bulk export's pages):
 * resolve the step and the integration, ask the integration's breaker when the run says so, and
 * wrap the step's writer so every remote call's outcome reaches the breaker and the metrics, and
 * every remote call keeps to the integration's rate limits (`limit-remote.ts`).
 */
import { Context } from '@temporalio/activity';
import type { Connector, Integration, Writer } from '../connectors/connector';
import { ConfigurationError, IntegrationDegradedError } from '../errors';
import type { StepDefinition } from '../jobs/definition';
import type { TidesyncMetrics } from '../metrics/metrics';
import { formatDuration } from '../retry-policy';
import { type Runtime, getJob } from '../runtime';
import type { SecretResolver } from '../secrets';
import { checkWrite, recordRemoteFailure, recordRemoteSuccess } from '../store/integration-health';
import { loadIntegrationForWrite } from '../store/rate-limits';
import { toActivityFailure } from './failures';
import { limitRemote } from './limit-remote';
import { watchRemote } from './watch-remote';

/** Opened by `openWriteSession`. */
export interface WriteSession {
  readonly step: StepDefinition;
  readonly integration: Integration;
  readonly connector: Connector;
  /** The step's writer, reporting to the breaker and held to the integration's rate limits. */
  readonly writer: Writer;
  readonly secret: string | undefined;
}

/** What `openWriteSession` needs from the activity's input. */
export interface WriteSessionInput {
  readonly job: string;
  readonly step: string;
  readonly integration: string;
  readonly connector: string;
  /** Ask the breaker first; only the probe `mayWrite` granted may write to a degraded remote. */
  readonly gate?: { readonly probe: boolean } | undefined;
}

/** See the module comment; throws the breaker's refusal as a non-retryable `IntegrationDegradedError`. */
export async function openWriteSession(
  runtime: Runtime,
  resolveSecret: SecretResolver,
  metrics: TidesyncMetrics | undefined,
  input: WriteSessionInput,
): Promise<WriteSession> {
  const db = runtime.store;
  const job = getJob(runtime, input.job);
  const step = job.steps.find((s) => s.name === input.step);
  if (!step) throw new ConfigurationError(`job '${job.name}' has no step '${input.step}'`);
  // The pause after a 429 comes with the integration row: an integration without limits learns of it for free.
  const { integration, pausedMs } = await loadIntegrationForWrite(db, input.integration);
  runtime.limiter.notePause(integration.id, pausedMs);
  const activity = Context.current();
  const attempt = activity.info.attempt;
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
  const watched = watchRemote(runtime.services.get('writer', step.writer), {
    answered: () => recordRemoteSuccess(db, integration.id),
    failed: async (err) => {
      await recordRemoteFailure(db, integration, err instanceof Error ? err.message : String(err));
    },
    timed: (ms) => metrics?.remoteWriteMs.record(Math.round(ms), { integration: integration.name, connector: input.connector }),
  });
  // Outside the breaker's watcher: a call the limiter holds back never reached the remote.
  const writer = limitRemote(watched, runtime.limiter, integration, () => activity.heartbeat(), {
    waited: (ms) => metrics?.rateLimitWaitMs.record(Math.round(ms), { integration: integration.name }),
    throttled: () => metrics?.remoteThrottled.add(1, { integration: integration.name }),
  });
  const connector = runtime.connectors.get(integration.type, input.connector);
  const secret = integration.secretRef ? await resolveSecret(integration.secretRef) : undefined;
  return { step, integration, connector, writer, secret };
}
