/**
 * Small `node:http` helpers for the demo CRM: reading a bounded body, parsing it as JSON with a
 * clear 400, and writing JSON responses. Kept apart so the server file reads as routing only.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CrmApiError, type CrmContact } from './crm-contact';
import type { StoredResponse } from './crm-idempotency';

/** Bodies above this are refused: the demo CRM never needs more, and a test must not OOM it. */
const MAX_BODY_BYTES = 1024 * 1024;

/** Reads the whole request body as UTF-8 text; answers 413 when it is too large. */
export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    // Keep draining past the limit so the client sees our 413 instead of a broken pipe.
    if (size <= MAX_BODY_BYTES) chunks.push(buffer);
  }
  if (size > MAX_BODY_BYTES) {
    throw new CrmApiError(413, 'payload_too_large', `request body is ${size} bytes; the limit is ${MAX_BODY_BYTES}`);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Parses a request body as JSON; an empty or broken body is a 400 that names the problem. */
export function parseJson(text: string): unknown {
  if (text.trim() === '') throw new CrmApiError(400, 'invalid_json', 'request body is empty; expected a JSON object');
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new CrmApiError(400, 'invalid_json', `request body is not valid JSON: ${reason}`);
  }
}

/** Writes a JSON response, or an empty one when `body` is undefined (204). */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  // The client may have gone away (a timed-out slow request); writing then is pointless.
  if (res.destroyed || res.headersSent) return;
  if (body === undefined || body === null) {
    res.writeHead(status, headers).end();
    return;
  }
  const text = JSON.stringify(body);
  res
    .writeHead(status, {
      ...headers,
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(Buffer.byteLength(text)),
    })
    .end(text);
}

/** Writes a demo CRM error response. */
export function sendError(res: ServerResponse, error: CrmApiError, headers: Record<string, string> = {}): void {
  sendJson(res, error.status, error.toBody(), headers);
}

/** The first value of a request header. */
export function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** A response carrying a contact, with its version as the `ETag`. */
export function withEtag(status: number, contact: CrmContact): StoredResponse {
  return { status, body: contact, etag: `"${contact.version}"` };
}

/** Writes a stored (or replayed) response with its `ETag`. */
export function send(res: ServerResponse, response: StoredResponse, headers: Record<string, string> = {}): void {
  const etag = response.etag === undefined ? {} : { etag: response.etag };
  sendJson(res, response.status, response.body, { ...headers, ...etag });
}

/**
 * Decodes a contact id (or `what` else the path names) from the path; a malformed escape is the
 * client's mistake, not a 500.
 */
export function decodeId(segment: string, what = 'contact id'): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new CrmApiError(400, 'invalid_path', `${what} "${segment}" is not a valid URL path segment`);
  }
}
