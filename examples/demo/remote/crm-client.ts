/**
 * A typed HTTP client for the demo CRM. It validates every response with a schema and turns
 * every failure into one of tidesync's classified remote errors, so writers never see a raw
 * status code or a bare `fetch failed`.
 */
import { z } from 'zod';
import {
  ConfigurationError,
  type PermanentRemoteError,
  RemoteNotFoundError,
  RemoteVersionConflictError,
  TransientRemoteError,
} from 'tidesync';
import {
  type RawResponse,
  type RemoteContact,
  UnexpectedRemoteResponseError,
  batchResponseSchema,
  describeCause,
  itemError,
  parseBody,
  readJson,
  remoteContactSchema,
  remoteError,
} from './crm-responses';

export { UnexpectedRemoteResponseError, type RemoteContact };

const DEFAULT_TIMEOUT_MS = 10_000;

/** The most items the demo CRM takes in one `POST /contacts/batch`; more is a 400 for all. */
export const BATCH_UPSERT_LIMIT = 100;

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

/**
 * One contact of a batch upsert: created without `id` or `externalKey`, replaced (or patched) with
 * `id`, upserted with `externalKey`.
 */
export interface BatchUpsertItem {
  /** Our name for the item, unique in the batch; its result carries it back. */
  key: string;
  /** The contact to replace; omitted to create one. */
  id?: string;
  /**
   * Our own id for the contact, instead of `id`: replaces every field of the contact carrying it
   * (200), or creates one carrying it (201), as `upsertByKey` does. Takes neither `ifMatch` nor
   * `partial`; an external key twice in one batch fails the second item (409).
   */
  externalKey?: string;
  /** Every field for a create, a replace or an upsert by key; only those to change with `partial`. */
  fields: RemoteContactFields | Partial<RemoteContactFields>;
  /** With `id`: change only the given fields (PATCH semantics) instead of replacing them all. */
  partial?: boolean;
  /** With `id`: the version we last saw; the item fails with `RemoteVersionConflictError` if it moved on. */
  ifMatch?: number | string;
  /** The item's own idempotency key, shared with `create`, `replace`, `patch` and `upsertByKey`. */
  idempotencyKey?: string;
}

/** What the remote did with one item of a batch upsert, in the order of the items. */
export type BatchUpsertResult =
  | { readonly key: string; readonly ok: true; readonly status: 200 | 201; readonly contact: RemoteContact }
  | {
      readonly key: string;
      readonly ok: false;
      readonly status: number;
      readonly error: PermanentRemoteError | RemoteVersionConflictError;
    };

/** Re-exported for callers of the client: a 412 answer to a conditional write. */
export { RemoteVersionConflictError };

interface RequestOptions extends ReadOptions {
  body?: unknown;
  idempotencyKey?: string;
  ifMatch?: number | string;
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
    // Doc: demo CRM `POST /contacts` (examples/demo/remote/crm-routes.ts)
    const response = await this.#request('POST', '/contacts', { ...options, body: fields });
    return parseBody(remoteContactSchema, response);
  }

  /** Reads a contact; `null` when the remote does not have it. */
  async get(id: string, options: ReadOptions = {}): Promise<RemoteContact | null> {
    try {
      // Doc: demo CRM `GET /contacts/:id` (examples/demo/remote/crm-routes.ts)
      const response = await this.#request('GET', contactPath(id), options);
      return parseBody(remoteContactSchema, response);
    } catch (error) {
      if (error instanceof RemoteNotFoundError) return null;
      throw error;
    }
  }

  /** Lists every contact. */
  async list(options: ReadOptions = {}): Promise<RemoteContact[]> {
    // Doc: demo CRM `GET /contacts` (examples/demo/remote/crm-routes.ts)
    const response = await this.#request('GET', '/contacts', options);
    return parseBody(z.array(remoteContactSchema), response);
  }

  /** Replaces every field of a contact. */
  async replace(id: string, fields: RemoteContactFields, options: WriteOptions): Promise<RemoteContact> {
    // Doc: demo CRM `PUT /contacts/:id` (examples/demo/remote/crm-routes.ts)
    const response = await this.#request('PUT', contactPath(id), { ...options, body: fields });
    return parseBody(remoteContactSchema, response);
  }

  /** Changes only the given fields of a contact. */
  async patch(id: string, fields: Partial<RemoteContactFields>, options: WriteOptions): Promise<RemoteContact> {
    // Doc: demo CRM `PATCH /contacts/:id` (examples/demo/remote/crm-routes.ts)
    const response = await this.#request('PATCH', contactPath(id), { ...options, body: fields });
    return parseBody(remoteContactSchema, response);
  }

  /**
   * Creates and replaces up to `BATCH_UPSERT_LIMIT` contacts in one request. An item the remote
   * refuses comes back with its error (`RemoteNotFoundError`, `RemoteVersionConflictError`, or
   * `PermanentRemoteError` for 409 and 422) and leaves the others alone; a failure of the whole
   * request is thrown as from any other call. Replaying the request's idempotency key returns
   * the first answer, refused items included.
   */
  async batchUpsert(items: readonly BatchUpsertItem[], options: Omit<WriteOptions, 'ifMatch'>): Promise<BatchUpsertResult[]> {
    // Doc: demo CRM `POST /contacts/batch` (examples/demo/remote/crm-batch.ts)
    const route = 'POST /contacts/batch';
    const response = await this.#request('POST', '/contacts/batch', { ...options, body: { items } });
    const { results } = parseBody(batchResponseSchema, response);
    const keys = results.map((result) => result.key);
    if (keys.length !== items.length || items.some((item, index) => item.key !== keys[index])) {
      throw new UnexpectedRemoteResponseError(`demo crm answered ${route} with results for other items than sent`, {
        status: response.status,
        remoteMessage: `sent ${items.length} items, got results for ${JSON.stringify(keys).slice(0, 200)}`,
      });
    }
    return results.map((result): BatchUpsertResult => {
      if ('contact' in result) return { key: result.key, ok: true, status: result.status, contact: result.contact };
      return { key: result.key, ok: false, status: result.status, error: itemError(result.key, result.status, result.error, route) };
    });
  }

  /** Deletes a contact; `RemoteNotFoundError` when it is already gone (and the key is new). */
  async delete(id: string, options: WriteOptions): Promise<void> {
    // Doc: demo CRM `DELETE /contacts/:id` (examples/demo/remote/crm-routes.ts)
    await this.#request('DELETE', contactPath(id), options);
  }

  /**
   * Creates or replaces the contact carrying `externalKey` (our own id for it, unique in the CRM):
   * every field is replaced, omitted optional ones cleared. Answers the contact, with
   * `externalKey`; it was created by this call (or by the first call of its idempotency key)
   * exactly when its `version` is 1, since a replace always raises the version past 1. Not
   * conditional: the remote refuses `If-Match` on this route, so the options take none.
   */
  async upsertByKey(externalKey: string, fields: RemoteContactFields, options: Omit<WriteOptions, 'ifMatch'>): Promise<RemoteContact> {
    // Doc: demo CRM `PUT /contacts/by-key/:externalKey` (examples/demo/remote/crm-routes.ts)
    const response = await this.#request('PUT', byKeyPath(externalKey), { ...options, body: fields });
    return parseBody(remoteContactSchema, response);
  }

  /**
   * Deletes the contact carrying `externalKey`; `RemoteNotFoundError` when none does (and the
   * idempotency key is new).
   */
  async deleteByKey(externalKey: string, options: Omit<WriteOptions, 'ifMatch'>): Promise<void> {
    // Doc: demo CRM `DELETE /contacts/by-key/:externalKey` (examples/demo/remote/crm-routes.ts)
    await this.#request('DELETE', byKeyPath(externalKey), options);
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

function byKeyPath(externalKey: string): string {
  // An empty key would name `/contacts/by-key/`, a route that does not exist: say what is wrong.
  if (externalKey === '') throw new ConfigurationError('demo crm external key must not be empty');
  return `/contacts/by-key/${encodeURIComponent(externalKey)}`;
}

/** Quotes a bare version as an entity tag; strings that already look like tags pass unchanged. */
function formatIfMatch(ifMatch: number | string): string {
  const text = String(ifMatch);
  return /^\d+$/.test(text) ? `"${text}"` : text;
}
