/**
 * Reading the demo CRM's answers: the schemas of its bodies, and every failure mapped to one of
 * tidesync's classified remote errors (transient, rate limited, permanent, not found, conflict).
 */
import { z } from 'zod';
import {
  PermanentRemoteError,
  RateLimitedError,
  RemoteNotFoundError,
  RemoteVersionConflictError,
  TransientRemoteError,
  parseRetryAfter,
} from 'tidesync';

/** Used when a 429 carries no readable `Retry-After`. */
const DEFAULT_RETRY_AFTER_MS = 1_000;

/** The raw remote shape of a contact. Not strict: fields the remote adds later must not break us. */
export const remoteContactSchema = z.object({
  id: z.string().min(1),
  version: z.number().int().positive(),
  firstName: z.string(),
  lastName: z.string(),
  email: z.string(),
  phone: z.string().nullable(),
  company: z.string().nullable(),
  /** Only on contacts created by external key (`PUT /contacts/by-key/:externalKey`). */
  externalKey: z.string().min(1).optional(),
});

const remoteErrorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), currentVersion: z.number().int().optional() }),
});

const batchResultSchema = z.union([
  z.object({ key: z.string(), status: z.union([z.literal(200), z.literal(201)]), contact: remoteContactSchema }),
  z.object({
    key: z.string(),
    status: z.union([z.literal(404), z.literal(409), z.literal(412), z.literal(422)]),
    error: remoteErrorSchema.shape.error,
  }),
]);
/** The body of a `POST /contacts/batch` answer. */
export const batchResponseSchema = z.object({ results: z.array(batchResultSchema) });

/** A contact as the demo CRM returns it: server id, version, the fields, and its external key if it has one. */
export type RemoteContact = z.infer<typeof remoteContactSchema>;

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

/** A 2xx answer: its status, the route asked and the parsed body. */
export interface RawResponse {
  status: number;
  route: string;
  json: unknown;
}

/** Parses a body as JSON; `undefined` for an empty one. */
export function readJson(text: string, status: number, route: string): unknown {
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

/** Checks a body against its schema; names the field path of the first problem. */
export function parseBody<T>(schema: z.ZodType<T>, response: RawResponse): T {
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
export function remoteError(response: Response, text: string, route: string): Error {
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

/** Maps a refused item of a batch to the error class a single request with that status gets. */
export function itemError(
  key: string,
  status: number,
  error: z.infer<typeof remoteErrorSchema>['error'],
  route: string,
): PermanentRemoteError | RemoteVersionConflictError {
  const remoteMessage = error.message;
  const where = `item "${key}" of ${route} (${status})`;
  if (status === 404) return new RemoteNotFoundError(`demo crm found nothing for ${where}: ${remoteMessage}`, { remoteMessage });
  if (status === 412) {
    return new RemoteVersionConflictError(`demo crm refused ${where}: ${remoteMessage}`, {
      currentVersion: error.currentVersion,
      remoteMessage,
    });
  }
  return new PermanentRemoteError(`demo crm rejected ${where}: ${remoteMessage}`, { status, remoteMessage });
}

/** What went wrong below `fetch`: undici's cause (`ECONNREFUSED ...`), or the error itself. */
export function describeCause(error: unknown): string {
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
