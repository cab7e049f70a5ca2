/**
 * tidesync's error classes, one module every layer may use (pure code: workflows import it too).
 * Writers raise the remote errors; activities map them to Temporal failures: transient and
 * rate-limited errors are retried, permanent and configuration errors fail without retrying.
 */

/** Base class: every tidesync error carries a stable, machine-readable `code`. */
export class TidesyncError extends Error {
  /** A stable identifier for the kind of error, for logs and for matching in code. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The remote failed in a way that may succeed on a later try: 5xx, timeout, connection refused. */
export class TransientRemoteError extends TidesyncError {
  /** HTTP status, when the remote answered at all. */
  readonly status: number | undefined;

  constructor(message: string, options?: { status?: number; cause?: unknown }) {
    super('remote_transient', message, options);
    this.status = options?.status;
  }
}

/** The remote asked us to slow down (HTTP 429); retry after `retryAfterMs`. */
export class RateLimitedError extends TidesyncError {
  /** How long the remote asked us to wait, in milliseconds. */
  readonly retryAfterMs: number;

  constructor(message: string, retryAfterMs: number, options?: { cause?: unknown }) {
    super('remote_rate_limited', message, options);
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * tidesync held a request back without sending it: the integration is paused after a 429 for
 * longer than one activity waits, or its declared limits keep the request queued too long. The
 * activity is retried after `retryAfterMs`; the remote saw nothing, so the breaker does not count it.
 */
export class IntegrationThrottledError extends RateLimitedError {
  constructor(message: string, retryAfterMs: number, options?: { cause?: unknown }) {
    super(message, retryAfterMs, options);
    Object.defineProperty(this, 'code', { value: 'integration_throttled' });
  }
}

/** The remote rejected the change for good (4xx other than 429): retrying cannot help. */
export class PermanentRemoteError extends TidesyncError {
  /** HTTP status the remote answered with. */
  readonly status: number | undefined;
  /** The remote's own explanation, recorded in the sync state and the execution record. */
  readonly remoteMessage: string;

  constructor(message: string, options: { status?: number; remoteMessage: string; cause?: unknown }) {
    super('remote_permanent', message, options);
    this.status = options.status;
    this.remoteMessage = options.remoteMessage;
  }
}

/** The remote does not know the record we tried to update or delete (HTTP 404). */
export class RemoteNotFoundError extends PermanentRemoteError {
  constructor(message: string, options: { remoteMessage: string; cause?: unknown }) {
    super(message, { ...options, status: 404 });
    Object.defineProperty(this, 'code', { value: 'remote_not_found' });
  }
}

/**
 * The remote record changed since the version we sent in a conditional write (`If-Match`, HTTP
 * 412). Not a failure of the remote: the engine reads the record again and merges again.
 */
export class RemoteVersionConflictError extends TidesyncError {
  /** The record's version on the remote now, when the remote told us. */
  readonly currentVersion: number | string | undefined;
  /** The remote's own explanation. */
  readonly remoteMessage: string;

  constructor(message: string, options: { currentVersion?: number | string | undefined; remoteMessage: string; cause?: unknown }) {
    super('remote_version_conflict', message, options);
    this.currentVersion = options.currentVersion;
    this.remoteMessage = options.remoteMessage;
  }
}

/**
 * The integration's circuit breaker is open (`degraded`): the remote kept failing, so this write
 * does not go out; the export waits on a durable timer and asks again (one probe per interval).
 */
export class IntegrationDegradedError extends TidesyncError {
  /** How long until the next probe may start, in milliseconds. */
  readonly retryInMs: number;

  constructor(message: string, retryInMs: number, options?: { cause?: unknown }) {
    super('integration_degraded', message, options);
    this.retryInMs = retryInMs;
  }
}

/** Configuration (integration, connector, job, table) is wrong; nothing will fix it but a human. */
export class ConfigurationError extends TidesyncError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('configuration', message, options);
  }
}

/** An entity id that cannot name a row of the connector's table (a wrong type, a missing column). */
export class InvalidEntityIdError extends TidesyncError {
  constructor(message: string) {
    super('invalid_entity_id', message);
  }
}

/**
 * A payload cannot be decrypted: encrypted under a key the codec does not have, tampered with, or
 * not a payload this codec wrote. `code` says which: `codec_unknown_key`, `codec_bad_payload`.
 */
export class CodecError extends TidesyncError {
  constructor(code: 'codec_unknown_key' | 'codec_bad_payload', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/**
 * Parses an HTTP `Retry-After` header (seconds or an HTTP date) into milliseconds.
 * Falls back to `fallbackMs` when the header is missing or unreadable.
 */
export function parseRetryAfter(header: string | null | undefined, fallbackMs: number, now = Date.now()): number {
  if (!header) return fallbackMs;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
  const date = Date.parse(header);
  if (Number.isFinite(date)) return Math.max(0, date - now);
  return fallbackMs;
}

/**
 * Failure types (error class names) that retrying cannot fix. Activities raise them as
 * non-retryable failures, and the workflows' retry policies list them too.
 */
export const NON_RETRYABLE_ERROR_TYPES: readonly string[] = ['ConfigurationError', 'PermanentRemoteError', 'RemoteNotFoundError'];
