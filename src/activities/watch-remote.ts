/**
 * Feeds the integration's circuit breaker from the writer's calls: every failed remote call counts
 * towards tripping it, and every write the remote answered (taken, or refused with a 4xx or 412:
 * either way the remote is up) ends the streak. Reads that succeed prove nothing about writes (a
 * remote may serve GETs while its writes fail), so they neither count nor close the breaker.
 */
import {
  type BatchItemResult,
  type Change,
  type RemoteRecord,
  type WriteContext,
  type WriteResult,
  type Writer,
  writerTraits,
} from '../connectors/connector';
import { PermanentRemoteError, RateLimitedError, RemoteVersionConflictError, TidesyncError, TransientRemoteError } from '../errors';

/** Where the watcher reports outcomes. */
export interface RemoteOutcomeReporter {
  /** The remote answered a write. */
  answered(): Promise<void>;
  /** A remote call failed in a way that says the remote is down or overloaded. */
  failed(error: unknown): Promise<void>;
  /** How long a remote write call took, whatever its outcome (for the latency metric). */
  timed?(ms: number): void;
}

/**
 * Whether an error says the remote is down or overloaded: 5xx, timeouts, connection errors, 429,
 * and errors the writer did not classify (a raw `fetch failed`).
 */
export function isRemoteOutage(err: unknown): boolean {
  if (err instanceof TransientRemoteError || err instanceof RateLimitedError) return true;
  return !(err instanceof TidesyncError);
}

/** Whether an error is the remote's own answer to a write (it is up, it refused this one). */
function isRemoteAnswer(err: unknown): boolean {
  return err instanceof PermanentRemoteError || err instanceof RemoteVersionConflictError;
}

/** The writer, with each remote call's outcome reported to `reporter`. */
export function watchRemote(writer: Writer, reporter: RemoteOutcomeReporter): Writer {
  const call = async <T>(context: WriteContext, isWrite: boolean, fn: () => Promise<T>): Promise<T> => {
    let result: T;
    const started = performance.now();
    try {
      result = await fn();
    } catch (err) {
      if (isWrite) reporter.timed?.(performance.now() - started);
      // A cancelled activity aborts its request: that says nothing about the remote.
      if (!context.signal.aborted) {
        if (isRemoteOutage(err)) await reporter.failed(err);
        else if (isWrite && isRemoteAnswer(err)) await reporter.answered();
      }
      throw err;
    }
    if (isWrite) {
      reporter.timed?.(performance.now() - started);
      await reporter.answered();
    }
    return result;
  };
  const read = writer.read;
  const remove = writer.delete;
  const batch = writer.writeBatch;
  return {
    ...writerTraits(writer),
    write: (change: Change, context: WriteContext): Promise<WriteResult> => call(context, true, () => writer.write(change, context)),
    // A batch the remote answered is one answered write, whatever became of its items.
    ...(batch
      ? {
          writeBatch: (changes: readonly Change[], context: WriteContext): Promise<readonly BatchItemResult[]> =>
            call(context, true, () => batch.call(writer, changes, context)),
        }
      : {}),
    ...(read
      ? {
          read: (remoteId: string, context: WriteContext): Promise<RemoteRecord | null> =>
            call(context, false, () => read.call(writer, remoteId, context)),
        }
      : {}),
    ...(remove
      ? {
          delete: (change: Change, context: WriteContext): Promise<void> => call(context, true, () => remove.call(writer, change, context)),
        }
      : {}),
  };
}
