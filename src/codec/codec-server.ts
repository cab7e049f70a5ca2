/**
 * A codec server: Temporal's `/encode` and `/decode` endpoints over the payload codec, so the Web
 * UI and the `temporal` CLI (`--codec-endpoint`) can show what tidesync wrote encrypted. Plain
 * node:http. CORS answers only the configured UI origins; a bearer token, when set, is required
 * on every POST and compared in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PayloadCodec } from '@temporalio/common';
import { CodecError } from '../errors';
import { payloadFromJson, payloadsBodySchema, payloadToJson } from './payload-json';

/** The port Temporal's TypeScript sample serves its codec on. */
export const DEFAULT_CODEC_SERVER_PORT = 8888;
/** What the Web UI sends: `content-type`, `x-namespace`, and `authorization` when it passes a token. */
export const CODEC_REQUEST_HEADERS = 'content-type, x-namespace, authorization';
/** A history event holds at most a few payloads of at most 2 MB each by default. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

/** Options of {@link startCodecServer}. */
export interface CodecServerOptions {
  readonly codec: PayloadCodec;
  /** Default {@link DEFAULT_CODEC_SERVER_PORT}; 0 picks a free port. */
  readonly port?: number;
  /** Default `127.0.0.1`: only this machine (and its browser) can ask. */
  readonly host?: string;
  /** Origins of the Web UI allowed to call from a browser (CORS), e.g. `http://localhost:8233`. */
  readonly origins?: readonly string[];
  /** When set, POSTs must carry `Authorization: Bearer <token>`. */
  readonly token?: string;
  /** Where refused and failed requests are reported (never their payloads); default none. */
  readonly log?: (line: string) => void;
}

/** A running codec server. */
export interface CodecServer {
  /** `http://host:port`, the UI's "codec endpoint". */
  readonly url: string;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  }
  if (size > MAX_BODY_BYTES) throw new HttpError(413, `request body is ${size} bytes; the limit is ${MAX_BODY_BYTES}`);
  return Buffer.concat(chunks).toString('utf8');
}

function parsePayloads(body: string) {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (err) {
    throw new HttpError(400, `malformed JSON: ${(err as Error).message}`);
  }
  const parsed = payloadsBodySchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`);
    throw new HttpError(400, `expected {"payloads": [{"metadata": {...}, "data": "<base64>"}]}: ${problems.join('; ')}`);
  }
  return parsed.data.payloads.map(payloadFromJson);
}

/** Starts the server; resolves once it listens. */
export async function startCodecServer(options: CodecServerOptions): Promise<CodecServer> {
  const origins = new Set(options.origins ?? []);
  const tokenHash = options.token === undefined ? undefined : sha256(options.token);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const origin = req.headers.origin;
    res.setHeader('vary', 'origin');
    if (origin !== undefined) {
      if (!origins.has(origin))
        throw new HttpError(403, `origin '${origin}' is not allowed (allowed: ${[...origins].join(', ') || 'none'})`);
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('access-control-allow-credentials', 'true');
    }
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        'access-control-allow-methods': 'POST, OPTIONS',
        'access-control-allow-headers': CODEC_REQUEST_HEADERS,
        'access-control-max-age': '600',
      });
      res.end();
      return;
    }
    // The protocol looks only at the last segment, so the endpoints may be mounted under any path.
    const operation = new URL(req.url ?? '/', 'http://codec').pathname.split('/').pop();
    if (operation !== 'encode' && operation !== 'decode') throw new HttpError(404, `no endpoint at '${req.url}': POST /encode or /decode`);
    if (req.method !== 'POST') throw new HttpError(405, `${req.method} /${operation}: use POST`, { allow: 'POST, OPTIONS' });
    if (tokenHash) {
      const given = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
      if (!timingSafeEqual(sha256(given), tokenHash)) {
        throw new HttpError(401, 'a valid bearer token is required', { 'www-authenticate': 'Bearer' });
      }
    }
    const payloads = parsePayloads(await readBody(req));
    let result;
    try {
      result = await (operation === 'encode' ? options.codec.encode(payloads) : options.codec.decode(payloads));
    } catch (err) {
      // A payload this codec cannot read is the caller's problem, not the server's.
      if (err instanceof CodecError) throw new HttpError(400, err.message);
      throw err;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ payloads: result.map(payloadToJson) }));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      const message = err instanceof HttpError ? err.message : `codec failed: ${(err as Error).message}`;
      options.log?.(`codec server: ${req.method} ${req.url} -> ${status} ${message}`);
      if (res.headersSent) return void res.destroy();
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...(err instanceof HttpError ? err.headers : {}) });
      res.end(`${message}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? DEFAULT_CODEC_SERVER_PORT, options.host ?? '127.0.0.1', () => resolve());
  });
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
