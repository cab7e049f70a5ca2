/**
 * The help desk this example pushes tickets to: a small `node:http` service with bearer auth,
 * `POST /tickets` and `PUT /tickets/:id`, answering `{ id, version, ...fields }`. The same
 * `Idempotency-Key` gets the first answer again, so a retried write never makes a second ticket.
 * Run it on its own with `npx jiti remote/helpdesk-server.ts` (HELPDESK_TOKEN, PORT).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

/** A ticket as the help desk keeps it. */
export interface RemoteTicket {
  readonly id: string;
  readonly version: number;
  readonly [field: string]: unknown;
}

/** A running help desk, inspectable by the process that started it. */
export interface HelpdeskServer {
  readonly url: string;
  /** Tickets by id. */
  readonly tickets: ReadonlyMap<string, RemoteTicket>;
  /** Every write received, in order (replays included), for tests. */
  readonly writes: ReadonlyArray<{ method: string; path: string; body: unknown }>;
  /** Answers the next write with this status (e.g. 503, 429), once. */
  failNext(status: number): void;
  stop(): Promise<void>;
}

type Answer = { status: number; body: unknown };

/** Starts the help desk on `127.0.0.1:port` (0: a free port). */
export async function startHelpdeskServer(options: { token: string; port?: number }): Promise<HelpdeskServer> {
  const tickets = new Map<string, RemoteTicket>();
  const answers = new Map<string, Answer>();
  const writes: Array<{ method: string; path: string; body: unknown }> = [];
  let failNext: number | null = null;

  const handle = async (req: IncomingMessage): Promise<Answer> => {
    if (req.headers.authorization !== `Bearer ${options.token}`) return { status: 401, body: { error: 'bad token' } };
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return { status: 400, body: { error: 'body is not JSON' } };
    }
    writes.push({ method: req.method ?? '', path: req.url ?? '', body });
    if (failNext !== null) {
      const status = failNext;
      failNext = null;
      return { status, body: { error: `failing on purpose with ${status}` } };
    }
    const key = req.headers['idempotency-key'];
    if (typeof key !== 'string' || key === '') return { status: 400, body: { error: 'Idempotency-Key is required' } };
    const replay = answers.get(key);
    if (replay) return replay;
    const fields = body as Record<string, unknown>;
    if (typeof fields.subject !== 'string' || fields.subject === '') return { status: 422, body: { error: 'subject is required' } };
    const put = /^\/tickets\/([^/]+)$/.exec(req.url ?? '');
    let answer: Answer;
    if (req.method === 'POST' && req.url === '/tickets') {
      const ticket = { ...fields, id: `HD-${tickets.size + 1}`, version: 1 };
      tickets.set(ticket.id, ticket);
      answer = { status: 201, body: ticket };
    } else if (req.method === 'PUT' && put) {
      const id = decodeURIComponent(put[1] as string);
      const current = tickets.get(id);
      if (!current) return { status: 404, body: { error: `no ticket ${id}` } };
      const ticket = { ...fields, id, version: current.version + 1 };
      tickets.set(id, ticket);
      answer = { status: 200, body: ticket };
    } else {
      return { status: 404, body: { error: `no route ${req.method} ${req.url}` } };
    }
    answers.set(key, answer);
    return answer;
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    handle(req).then(
      ({ status, body }) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body)),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    tickets,
    writes,
    failNext: (status) => (failNext = status),
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

// Run directly (by a TypeScript runner such as tsx or jiti, whose argv[1] is this file): serve until stopped.
if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === __filename) {
  const token = process.env['HELPDESK_TOKEN'];
  if (!token) throw new Error('set HELPDESK_TOKEN to the bearer token clients must send');
  startHelpdeskServer({ token, port: Number(process.env['PORT'] ?? 8787) }).then(
    (helpdesk) => console.log(`help desk listening on ${helpdesk.url}`),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
