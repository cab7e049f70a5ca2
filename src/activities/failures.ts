/**
 * Maps tidesync's error classes to Temporal failures: what is retried, after how long, and what
 * is final. Activities throw only through `toActivityFailure`.
 */
import { ApplicationFailure } from '@temporalio/activity';
import {
  ConfigurationError,
  IntegrationDegradedError,
  PermanentRemoteError,
  RateLimitedError,
  TidesyncError,
  TransientRemoteError,
} from '../errors';

/**
 * Converts any error thrown inside an activity into the failure Temporal should see; `extra` joins
 * the failure's details (the write activity adds the attempt and the entity key).
 */
export function toActivityFailure(err: unknown, extra: Record<string, unknown> = {}): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof RateLimitedError) {
    // The remote said when to come back: retry then, not on our own backoff schedule.
    return ApplicationFailure.create({
      message: err.message,
      type: err.name,
      nextRetryDelay: Math.max(err.retryAfterMs, 1),
      details: [{ code: err.code, retryAfterMs: err.retryAfterMs, ...extra }],
      cause: err,
    });
  }
  if (err instanceof IntegrationDegradedError) {
    // Not the activity's to retry: the workflow waits on a durable timer and asks the breaker again.
    return ApplicationFailure.create({
      message: err.message,
      type: err.name,
      nonRetryable: true,
      details: [{ code: err.code, retryInMs: err.retryInMs, ...extra }],
      cause: err,
    });
  }
  if (err instanceof TransientRemoteError) {
    return ApplicationFailure.create({ message: err.message, type: err.name, details: [{ code: err.code, ...extra }], cause: err });
  }
  if (err instanceof PermanentRemoteError || err instanceof ConfigurationError) {
    return ApplicationFailure.create({
      message: err.message,
      type: err.name,
      nonRetryable: true,
      details: [{ code: err.code, ...extra }],
      cause: err,
    });
  }
  if (err instanceof TidesyncError) {
    return ApplicationFailure.create({ message: err.message, type: err.name, details: [{ code: err.code, ...extra }], cause: err });
  }
  // Unknown errors (a dropped database connection, a bug) are retried: the retry policy bounds them.
  const error = err instanceof Error ? err : new Error(String(err));
  return ApplicationFailure.create({
    message: error.message,
    type: error.name,
    ...(Object.keys(extra).length > 0 ? { details: [extra] } : {}),
    cause: error,
  });
}

/** Wraps an activity so whatever it throws reaches Temporal as a classified failure. */
export function classified<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A) => {
    try {
      return await fn(...args);
    } catch (err) {
      throw toActivityFailure(err);
    }
  };
}
