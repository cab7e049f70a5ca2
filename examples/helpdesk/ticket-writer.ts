/**
 * Writes tickets to the help desk: `POST /tickets` the first time, `PUT /tickets/:id` afterwards,
 * with the change's idempotency key. Every failure becomes one of tidesync's remote errors, so
 * the engine knows whether to retry.
 */
import type { Change, WriteContext, WriteResult, Writer } from 'tidesync';
import {
  ConfigurationError,
  PermanentRemoteError,
  RateLimitedError,
  RemoteNotFoundError,
  TransientRemoteError,
  parseRetryAfter,
} from 'tidesync';

const TIMEOUT_MS = 10_000;
/** Used when a 429 carries no readable `Retry-After`. */
const DEFAULT_RETRY_AFTER_MS = 1_000;

/** What the help desk answers a write with (more fields besides; checked before use). */
type RemoteAnswer = { id?: unknown; version?: unknown };

/** Pushes full ticket changesets (no partial updates, no reads, no deletes). */
export class TicketWriter implements Writer {
  async write(change: Change, context: WriteContext): Promise<WriteResult> {
    const { integration } = context;
    const baseUrl = integration.transport['baseUrl'];
    if (typeof baseUrl !== 'string' || !URL.canParse(baseUrl)) {
      throw new ConfigurationError(`integration '${integration.name}' transport.baseUrl ${JSON.stringify(baseUrl)} is not a URL`);
    }
    if (!context.secret) throw new ConfigurationError(`integration '${integration.name}' has no secret reference`);
    // A create has no remote id yet; so does a ticket recreated after the help desk lost it.
    const remoteId = change.operation === 'create' ? null : change.remoteId;
    const route =
      remoteId === null
        ? // Doc: helpdesk `POST /tickets` (remote/helpdesk-server.ts)
          { method: 'POST', path: '/tickets' }
        : // Doc: helpdesk `PUT /tickets/:id` (remote/helpdesk-server.ts)
          { method: 'PUT', path: `/tickets/${encodeURIComponent(remoteId)}` };
    const what = `helpdesk ${route.method} ${route.path}`;
    let response: Response;
    let text: string;
    try {
      response = await fetch(`${baseUrl.replace(/\/+$/, '')}${route.path}`, {
        method: route.method,
        headers: {
          authorization: `Bearer ${context.secret}`,
          'content-type': 'application/json',
          'idempotency-key': change.idempotencyKey,
        },
        body: JSON.stringify(change.data),
        signal: AbortSignal.any([context.signal, AbortSignal.timeout(TIMEOUT_MS)]),
      });
      text = await response.text();
    } catch (err) {
      if (context.signal.aborted) throw context.signal.reason;
      throw new TransientRemoteError(`${what} failed: ${(err as Error).message}`, { cause: err });
    }
    const { status } = response;
    if (status === 429) {
      const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), DEFAULT_RETRY_AFTER_MS);
      throw new RateLimitedError(`${what} was rate limited; retry after ${retryAfterMs} ms`, retryAfterMs);
    }
    if (status >= 500) throw new TransientRemoteError(`${what} answered ${status}: ${text.slice(0, 200)}`, { status });
    if (status === 404) throw new RemoteNotFoundError(`${what} found no such ticket`, { remoteMessage: text.slice(0, 200) });
    if (status >= 400)
      throw new PermanentRemoteError(`${what} rejected the ticket (${status})`, { status, remoteMessage: text.slice(0, 200) });
    let body: RemoteAnswer | null = null;
    try {
      body = JSON.parse(text) as RemoteAnswer;
    } catch {
      // Checked just below: a body that is not `{ id, version }` is refused either way.
    }
    if (typeof body?.id !== 'string' || typeof body.version !== 'number') {
      throw new PermanentRemoteError(`${what} answered without { id, version }`, { status, remoteMessage: text.slice(0, 200) });
    }
    return { remoteId: body.id, remoteVersion: String(body.version) };
  }
}
