/**
 * Connections to Temporal for the worker (`NativeConnection`) and the client (`Connection`), from
 * settings merged by `resolveTemporalSettings`. Both fail within a bounded time, with a message
 * that names the address, the security in use and the underlying reason.
 */
import { Connection } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { ConfigurationError } from '../errors';
import type { ResolvedTemporal } from './resolve';

export { type ResolvedTemporal, type TemporalConnectionOptions, resolveTemporalSettings } from './resolve';
export { type TemporalSettings, type TemporalTlsSettings, parseTemporalSettings, temporalSettingsSchema } from './settings';

/** How long a connection may take before it fails: the client SDK's own default. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Options of {@link connectWorkerConnection} and {@link connectClientConnection}. */
export interface ConnectOptions {
  /** Fail when the server has not answered within this many milliseconds; default {@link DEFAULT_CONNECT_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
}

/** Likely causes, matched on the native (rustls) and the grpc-js (OpenSSL) wording alike. */
const HINTS: ReadonlyArray<readonly [RegExp, string]> = [
  [
    /UnknownIssuer|unable to verify|self[- ]signed|certificate verify failed/i,
    "the server's certificate is not signed by the configured CA",
  ],
  [/CertificateRequired|certificate required/i, 'the server requires a client certificate (mutual TLS)'],
  [
    /NotValidForName|altnames|Hostname\/IP does not match/i,
    "the server's certificate does not carry the expected name (set tls serverName)",
  ],
  [/ConnectionRefused|ECONNREFUSED/, 'nothing listens at that address'],
];

/** A connection the server closed (reset, broken pipe, closed) without saying why. */
const CLOSED = /connection closed|Canceled|ConnectionReset|ECONNRESET|BrokenPipe|broken pipe|Failed to connect \(/i;
const CLOSED_HINT = 'the server closed the connection (TLS on one side only?)';
/**
 * The same over TLS without a client certificate: over TLS 1.3 a server that wants one refuses it
 * after the client thinks the handshake is done, so the client may only see the connection close
 * (reset or broken pipe, by timing), not the server's alert.
 */
const MAYBE_MTLS = 'the server closed the connection: it may require a client certificate (mutual TLS), or not speak TLS';

class ConnectTimeout extends Error {}

function describe(resolved: ResolvedTemporal): string {
  const { tls, apiKey } = resolved.connectionOptions;
  const transport = !tls ? 'plaintext' : typeof tls === 'object' && tls.clientCertPair ? 'mTLS' : 'TLS';
  return apiKey ? `${transport} with API key` : transport;
}

function connectError(resolved: ResolvedTemporal, err: unknown, timeoutMs: number): ConfigurationError {
  const reason =
    err instanceof ConnectTimeout || /DEADLINE_EXCEEDED|Failed to connect before the deadline/.test((err as Error).message)
      ? `no answer within ${timeoutMs} ms`
      : (err as Error).message.replace(/\.?\s*Resolution note:\s*$/, '');
  const closed = CLOSED.test(reason) ? (describe(resolved) === 'TLS' ? MAYBE_MTLS : CLOSED_HINT) : undefined;
  const hint = HINTS.find(([pattern]) => pattern.test(reason))?.[1] ?? closed;
  return new ConfigurationError(
    `cannot connect to temporal at '${resolved.address}' (${describe(resolved)}): ${hint ? `${hint}: ` : ''}${reason}`,
    { cause: err },
  );
}

async function withTimeout<T>(pending: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ConnectTimeout()), timeoutMs);
  });
  try {
    return await Promise.race([pending, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Connects the worker's `NativeConnection`. The native connect fails at once on a refused port, an
 * unknown CA or a missing client certificate, but waits without end for a server that accepts TCP
 * and never completes the TLS handshake: hence the timer.
 */
export async function connectWorkerConnection(resolved: ResolvedTemporal, options: ConnectOptions = {}): Promise<NativeConnection> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  // The worker SDK (native core, bundler) loads only in processes that run a worker.
  const { NativeConnection: Native } = await import('@temporalio/worker');
  const pending = Native.connect(resolved.connectionOptions);
  try {
    return await withTimeout(pending, timeoutMs);
  } catch (err) {
    // A connection that arrives after we gave up must not stay open.
    if (err instanceof ConnectTimeout) void pending.then((late) => late.close()).catch(() => undefined);
    throw connectError(resolved, err, timeoutMs);
  }
}

/**
 * Connects the client's `Connection`. The SDK's own connect waits out its whole timeout whatever
 * the cause, then says only "Failed to connect before the deadline": a first call without the
 * retrying interceptor fails at once with grpc's reason (refused, unknown CA, certificate required).
 */
export async function connectClientConnection(resolved: ResolvedTemporal, options: ConnectOptions = {}): Promise<Connection> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const probe = Connection.lazy({ ...resolved.connectionOptions, interceptors: [] });
  try {
    await probe.withDeadline(Date.now() + timeoutMs, () => probe.workflowService.getSystemInfo({}));
  } catch (err) {
    throw connectError(resolved, err, timeoutMs);
  } finally {
    await probe.close();
  }
  const connection = Connection.lazy({ ...resolved.connectionOptions, connectTimeout: timeoutMs });
  try {
    await connection.ensureConnected();
    return connection;
  } catch (err) {
    await connection.close();
    throw connectError(resolved, err, timeoutMs);
  }
}
