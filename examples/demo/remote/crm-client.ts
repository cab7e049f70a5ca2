/**
 * A typed HTTP client for the demo CRM. It validates every response with a schema and turns
 * every failure into one of tidesync's classified remote errors, so writers never see a raw
 * status code or a bare `fetch failed`.
 */
import { z } from 'zod';
import {
  ConfigurationError,
  PermanentRemoteError,
  RateLimitedError,
  RemoteNotFoundError,
  RemoteVersionConflictError,
  TransientRemoteError,
  parseRetryAfter,
} from 'tidesync';

const DEFAULT_TIMEOUT_MS = 10_000;
/** Used when a 429 carries no readable `Retry-After`. */
const DEFAULT_RETRY_AFTER_MS = 1_000;

/** The raw remote shape of a contact. Not strict: fields the remote adds later must not break us. */
const remoteContactSchema = z.object({
  id: z.string().min(1),
  version: z.number().int().positive(),
  firstName: z.string(),
  lastName: z.string(),
  email: z.string(),
  phone: z.string().nullable(),
  company: z.string().nullable(),
});

const remoteErrorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), currentVersion: z.number().int().optional() }),
});

/** A contact as the demo CRM returns it: server id, version, and the fields. */
export type RemoteContact = z.infer<typeof remoteContactSchema>;

/** The fields we send for a create or a full replace; omitted optional fields are cleared. */
export interface RemoteContactFields {
  firstName: string;
  lastName?: string | undefined;
  email: string;
  phone?: string | null | undefined;
  company?: string | null | undefined;
}

/** How to reach a demo CRM. */
export interface DemoCrmClientOptions {
  /** E.g. `http://127.0.0.1:41234` (see `DemoCrmServer.url`). */
  baseUrl: string;
  /** The bearer token; resolve it from the secret reference inside an activity, never in a workflow. */
  token: string;
  /** Per-request timeout including reading the body; default 10000. */
  timeoutMs?: number;
}

/** Options of a read. */
export interface ReadOptions {
  /** Cancels the request, e.g. when the Temporal activity is cancelled. */
  signal?: AbortSignal;
}

/** Options of a write: the idempotency key must be stable across retries of the same change. */
export interface WriteOptions extends ReadOptions {
  idempotencyKey: string;
  /** The version we last saw; the write fails with `RemoteVersionConflictError` if it moved on. */
  ifMatch?: number | string;
}

/** Re-exported for callers of the client: a 412 answer to a conditional write. */
export { RemoteVersionConflictError };

/**
 * The remote answered with a body we cannot read (not JSON, or not the documented shape).
 * Permanent: replaying the same request would replay the same body.
 */
export class UnexpectedRemoteResponseError extends PermanentRemoteError {
  constructor(message: string, options: { status: number; remoteMessage: string; cause?: unknown }) {
    super(message, options);
    Object.defineProperty(this, 'code', { value: 'remote_unexpected_response' });
  }
}

interface RequestOptions extends ReadOptions {
  body?: unknown;
  idempotencyKey?: string;
  ifMatch?: number | string;
}

interface RawResponse {
  status: number;
  route: string;
  json: unknown;
}

/** A client of the demo CRM's contacts API (`DemoCrmServer`). */
export class DemoCrmClient {
  readonly #baseUrl: string;
  readonly #token: string;
  readonly #timeoutMs: number;

  constructor(options: DemoCrmClientOptions) {
    if (!URL.canParse(options.baseUrl)) {
      throw new ConfigurationError(`demo crm baseUrl "${options.baseUrl}" is not a valid URL`);
    }
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new ConfigurationError(`demo crm timeoutMs must be a positive number, got ${timeoutMs}`);
    }
    this.#baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#token = options.token;
    this.#timeoutMs = timeoutMs;
  }

  /** Creates a contact; replaying the same idempotency key returns the first result. */
  async create(fields: RemoteContactFields, options: WriteOptions): Promise<RemoteContact> {
    // Doc: demo CRM `POST /contacts` (src/connectors/demo/remote/crm-server.ts)
    const response = await this.#request('POST', '/contacts', { ...options, body: fields });
    return parseBody(remoteContactSchema, response);
  }

  /** Reads a contact; `null` when the remote does not have it. */
  async get(id: string, options: ReadOptions = {}): Promise<RemoteContact | null> {
    try {
      // Doc: demo CRM `GET /contacts/:id` (src/connectors/demo/remote/crm-server.ts)
      const response = await this.#request('GET', contactPath(id), options);
      return parseBody(remoteContactSchema, response);
    } catch (error) {
      if (error instanceof RemoteNotFoundError) return null;
      throw error;
    }
  }

  /** Lists every contact. */
  async list(options: ReadOptions = {}): Promise<RemoteContact[]> {
    // Doc: demo CRM `GET /contacts` (src/connectors/demo/remote/crm-server.ts)
    const response = await this.#request('GET', '/contacts', options);
    return parseBody(z.array(remoteContactSchema), response);
  }

  /** Replaces every field of a contact. */
  async replace(id: string, fields: RemoteContactFields, options: WriteOptions): Promise<RemoteContact> {
    // Doc: demo CRM `PUT /contacts/:id` (src/connectors/demo/remote/crm-server.ts)
    const response = await this.#request('PUT', contactPath(id), { ...options, body: fields });
    return parseBody(remoteContactSchema, response);
  }

  /** Changes only the given fields of a contact. */
  async patch(id: string, fields: Partial<RemoteContactFields>, options: WriteOptions): Promise<RemoteContact> {
    // Doc: demo CRM `PATCH /contacts/:id` (src/connectors/demo/remote/crm-server.ts)
    const response = await this.#request('PATCH', contactPath(id), { ...options, body: fields });
    return parseBody(remoteContactSchema, response);
  }

  /** Deletes a contact; `RemoteNotFoundError` when it is already gone (and the key is new). */
  async delete(id: string, options: WriteOptions): Promise<void> {
    // Doc: demo CRM `DELETE /contacts/:id` (src/connectors/demo/remote/crm-server.ts)
    await this.#request('DELETE', contactPath(id), options);
  }

  async #request(method: string, path: string, options: RequestOptions): Promise<RawResponse> {
    const route = `${method} ${path}`;
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
    const headers: Record<string, string> = { authorization: `Bearer ${this.#token}`, accept: 'application/json' };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (options.idempotencyKey !== undefined) headers['idempotency-key'] = options.idempotencyKey;
    if (options.ifMatch !== undefined) headers['if-match'] = formatIfMatch(options.ifMatch);

    let response: Response;
    let text: string;
    try {
      response = await fetch(`${this.#baseUrl}${path}`, {
        method,
        headers,
        signal,
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      });
      // Inside the try: the timeout also covers a remote that stalls halfway through the body.
      text = await response.text();
    } catch (error) {
      // The caller's cancellation is not a remote failure: let it through unchanged.
      if (options.signal?.aborted) throw options.signal.reason;
      if (timeout.aborted) {
        const message = `demo crm did not answer ${route} within ${this.#timeoutMs}ms`;
        throw new TransientRemoteError(message, { cause: error });
      }
      throw new TransientRemoteError(`demo crm unreachable for ${route}: ${describeCause(error)}`, { cause: error });
    }
    if (response.ok) return { status: response.status, route, json: readJson(text, response.status, route) };
    throw remoteError(response, text, route);
  }
}

function contactPath(id: string): string {
  return `/contacts/${encodeURIComponent(id)}`;
}

/** Quotes a bare version as an entity tag; strings that already look like tags pass unchanged. */
function formatIfMatch(ifMatch: number | string): string {
  const text = String(ifMatch);
  return /^\d+$/.test(text) ? `"${text}"` : text;
}

function readJson(text: string, status: number, route: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new UnexpectedRemoteResponseError(`demo crm answered ${route} (${status}) with a body that is not JSON`, {
      status,
      remoteMessage: text.slice(0, 200),
      cause: error,
    });
  }
}

function parseBody<T>(schema: z.ZodType<T>, response: RawResponse): T {
  const result = schema.safeParse(response.json);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue?.path.map((part) => (typeof part === 'number' ? `[${part}]` : `.${String(part)}`)).join('') ?? '';
  const where = field === '' ? '(body)' : field.replace(/^\./, '');
  throw new UnexpectedRemoteResponseError(
    `demo crm answered ${response.route} with an unexpected body at ${where}: ${issue?.message ?? 'unknown problem'}`,
    { status: response.status, remoteMessage: JSON.stringify(response.json)?.slice(0, 200) ?? '' },
  );
}

/** Maps a non-2xx answer to the error class that tells the activity whether to retry. */
function remoteError(response: Response, text: string, route: string): Error {
  const status = response.status;
  let parsed: z.infer<typeof remoteErrorSchema> | undefined;
  try {
    parsed = remoteErrorSchema.safeParse(JSON.parse(text)).data;
  } catch {
    // Not JSON (a proxy's HTML page, say): the raw text is still the best explanation we have.
  }
  const remoteMessage = parsed?.error.message ?? (text.slice(0, 200) || response.statusText || `http ${status}`);
  if (status === 429) {
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), DEFAULT_RETRY_AFTER_MS);
    return new RateLimitedError(`demo crm rate limited ${route}; retry after ${retryAfterMs}ms`, retryAfterMs);
  }
  if (status === 404) {
    return new RemoteNotFoundError(`demo crm found nothing for ${route} (404): ${remoteMessage}`, { remoteMessage });
  }
  if (status === 412) {
    return new RemoteVersionConflictError(`demo crm refused ${route} (412): ${remoteMessage}`, {
      currentVersion: parsed?.error.currentVersion,
      remoteMessage,
    });
  }
  if (status >= 500) {
    return new TransientRemoteError(`demo crm failed ${route} (${status}): ${remoteMessage}`, { status });
  }
  const message = `demo crm rejected ${route} (${status}): ${remoteMessage}`;
  return new PermanentRemoteError(message, { status, remoteMessage });
}

function describeCause(error: unknown): string {
  // undici reports `fetch failed` and keeps the useful part (ECONNREFUSED, socket closed) in
  // `cause`. Duck-typed, not `instanceof Error`: fetch's errors may come from another realm (jest).
  const outer = error as { cause?: unknown } | null | undefined;
  const cause = (typeof outer?.cause === 'object' && outer.cause !== null ? outer.cause : error) as {
    code?: unknown;
    message?: unknown;
  } | null;
  const message = typeof cause?.message === 'string' ? cause.message : String(cause);
  return typeof cause?.code === 'string' ? `${cause.code} ${message}` : message;
}
