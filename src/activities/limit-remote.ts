/**
 * Holds every remote call the engine makes for a writer (`write`, `writeBatch`, `delete`, the
 * `read` before an update) to the integration's limits, shared by all workers (see
 * `store/remote-limiter.ts`), so no connector has to opt in. A 429 the remote answers pauses
 * the whole integration until its Retry-After (and cuts its rate) before the error goes on to be
 * retried as before. It wraps the writer that reports to the breaker, so a call it holds back
 * is not a remote failure.
 */
import {
  type BatchItemResult,
  type Change,
  type Integration,
  type RemoteRecord,
  type WriteContext,
  type WriteResult,
  type Writer,
  writerTraits,
} from '../connectors/connector';
import { IntegrationThrottledError, RateLimitedError } from '../errors';
import { type RemoteLimiter, isLimited } from '../store/remote-limiter';

/** What `limitRemote` reports. */
export interface LimitObserver {
  /** How long a call waited for the limiter (ms), for calls that are limited or waited. */
  waited?(ms: number): void;
  /** The remote answered 429 and the integration was paused. */
  throttled?(): void;
}

/** The writer, with each remote call held to `integration`'s limits by `limiter`. */
export function limitRemote(
  writer: Writer,
  limiter: RemoteLimiter,
  integration: Integration,
  heartbeat: () => void,
  observer: LimitObserver = {},
): Writer {
  const limited = isLimited(integration);
  const call = async <T>(context: WriteContext, fn: () => Promise<T>): Promise<T> => {
    const permit = await limiter.acquire(integration, { signal: context.signal, heartbeat });
    if (limited || permit.waitedMs > 0) observer.waited?.(permit.waitedMs);
    try {
      return await fn();
    } catch (err) {
      // Recorded while this call still holds its slot, so no request of this process slips in first.
      if (err instanceof RateLimitedError && !(err instanceof IntegrationThrottledError) && !context.signal.aborted) {
        observer.throttled?.();
        // The 429 is what the caller must see: a failure to record the pause must not replace it.
        await limiter.throttled(integration, err.retryAfterMs).catch(() => undefined);
      }
      throw err;
    } finally {
      await permit.release();
    }
  };
  const read = writer.read;
  const remove = writer.delete;
  const batch = writer.writeBatch;
  return {
    ...writerTraits(writer),
    write: (change: Change, context: WriteContext): Promise<WriteResult> => call(context, () => writer.write(change, context)),
    ...(batch
      ? {
          writeBatch: (changes: readonly Change[], context: WriteContext): Promise<readonly BatchItemResult[]> =>
            call(context, () => batch.call(writer, changes, context)),
        }
      : {}),
    ...(read
      ? {
          read: (remoteId: string, context: WriteContext): Promise<RemoteRecord | null> =>
            call(context, () => read.call(writer, remoteId, context)),
        }
      : {}),
    ...(remove
      ? { delete: (change: Change, context: WriteContext): Promise<void> => call(context, () => remove.call(writer, change, context)) }
      : {}),
  };
}
