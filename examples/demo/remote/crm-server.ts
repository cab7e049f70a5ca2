/**
 * The demo CRM: a real HTTP service (plain `node:http`) that the demo and the tests start
 * themselves, so writers are exercised against real sockets, real status codes and real
 * failures (injected through `/_control`) instead of mocks.
 *
 * The contacts API, by contact id and by the client's own external key, is listed in
 * `crm-routes.ts`; the batch upsert in `crm-batch.ts`.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { applyBatch, parseBatch } from './crm-batch';
import { CrmApiError, type CrmContact } from './crm-contact';
import { FaultQueue, parseFaultSpec, type Fault, type FaultSpec } from './crm-faults';
import { decodeId, header, parseJson, readBody, send, sendError, sendJson, withEtag } from './crm-http';
import type { StoredResponse } from './crm-idempotency';
import type { CrmStorage } from './crm-journal';
import { type CrmRequest, CrmRequestLog } from './crm-requests';
import { applyContactsRequest, resolveContactsRoute } from './crm-routes';
import { CrmStore, type CrmStats, type CrmWriteHook } from './crm-store';

/** How to start a demo CRM. */
export interface DemoCrmServerOptions {
  /** The bearer token every `/contacts` request must carry. */
  token: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Defaults to 127.0.0.1: the demo CRM is never meant to be reachable from elsewhere. */
  host?: string;
  /**
   * Keeps the data across restarts: a snapshot in this file, and every applied request appended
   * to `<dataFile>.journal`, replayed at start and folded into the snapshot as it grows and on
   * `stop()`. Without it the data lives in memory only.
   */
  dataFile?: string;
  /** Sees each applied create, update or delete of ours (see `CrmWriteHook`); for in-process benchmarks. */
  onWrite?: CrmWriteHook;
}

const EDIT_ROUTE = /^\/_control\/contacts\/([^/]+)\/edit$/;

/**
 * A demo remote CRM with a REST contacts API: bearer auth, versions with `ETag`/`If-Match`,
 * `Idempotency-Key` replay, upserts by external key, a batch upsert (`POST /contacts/batch`, see
 * `crm-batch.ts`) and fault injection. The control operations are also methods, for tests
 * running in the same process.
 */
export class DemoCrmServer {
  readonly #server: Server;
  readonly #store: CrmStore;
  readonly #faultQueue = new FaultQueue();
  readonly #requests = new CrmRequestLog();
  readonly #token: Buffer;
  /** Pending `slow` waits, ended early by `stop()` so it never hangs on them. */
  readonly #sleepers = new Map<NodeJS.Timeout, () => void>();
  #url = '';
  #stopped: Promise<void> | undefined;

  private constructor(token: string, store: CrmStore) {
    this.#token = Buffer.from(token);
    this.#store = store;
    this.#server = createServer((req, res) => {
      // `#dispatch` answers its own errors; this only guards against a failure while answering.
      this.#dispatch(req, res).catch(() => res.destroy());
    });
  }

  /** Starts a demo CRM and resolves once it is listening. */
  static async start(options: DemoCrmServerOptions): Promise<DemoCrmServer> {
    if (options.token === '') throw new Error('demo crm needs a non-empty token');
    const instance = new DemoCrmServer(options.token, CrmStore.open({ dataFile: options.dataFile, onWrite: options.onWrite }));
    const host = options.host ?? '127.0.0.1';
    const server = instance.#server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const { port } = server.address() as AddressInfo;
    instance.#url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    return instance;
  }

  /** The base URL, e.g. `http://127.0.0.1:41234`. */
  get url(): string {
    return this.#url;
  }

  /**
   * Stops listening and closes every open connection, including ones held by `slow` faults, then
   * folds the journal into the data file.
   */
  async stop(): Promise<void> {
    this.#stopped ??= new Promise<void>((resolve, reject) => {
      for (const [timer, wake] of this.#sleepers) {
        clearTimeout(timer);
        wake();
      }
      this.#sleepers.clear();
      this.#server.close((error) => (error ? reject(error) : resolve()));
      this.#server.closeAllConnections();
    }).then(() => this.#store.close());
    return this.#stopped;
  }

  /** A copy of the request counters (`GET /_control/stats`). */
  stats(): CrmStats {
    return this.#store.stats();
  }

  /** The data file's and journal's sizes and the compactions since start; null without a data file. */
  storage(): CrmStorage | null {
    return this.#store.storage();
  }

  /** Zeroes the request counters and the request log (`POST /_control/stats/reset`). */
  resetStats(): void {
    this.#store.resetStats();
    this.#requests.reset();
  }

  /** Every `/contacts` request since the last reset, oldest first, with when it arrived and ended (`GET /_control/requests`). */
  requests(): CrmRequest[] {
    return this.#requests.entries();
  }

  /** The most `/contacts` requests in flight at once since the last reset. */
  peakInFlight(): number {
    return this.#requests.peakInFlight;
  }

  /** Queues a fault for upcoming matching requests (`POST /_control/faults`); validates `spec`. */
  injectFault(spec: FaultSpec): Fault {
    return this.#faultQueue.add(parseFaultSpec(spec));
  }

  /** Drops every pending fault (`DELETE /_control/faults`). */
  clearFaults(): void {
    this.#faultQueue.clear();
  }

  /** The pending faults (`GET /_control/faults`). */
  faults(): Fault[] {
    return this.#faultQueue.list();
  }

  /** Edits a contact as a CRM user would (`POST /_control/contacts/:id/edit`); throws `CrmApiError`. */
  editAsRemoteUser(id: string, patch: Record<string, unknown>): CrmContact {
    return this.#store.editAsRemoteUser(id, patch);
  }

  /** Every contact currently stored. */
  contacts(): CrmContact[] {
    return this.#store.list();
  }

  /** The contact carrying `externalKey`, if any (a copy). */
  contactByKey(externalKey: string): CrmContact | undefined {
    return this.#store.findByKey(externalKey);
  }

  /** Removes every contact and idempotency record (`DELETE /_control/contacts`). */
  wipe(): void {
    this.#store.wipe();
  }

  async #dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const path = new URL(req.url ?? '/', 'http://demo-crm').pathname;
    try {
      if (path === '/contacts' || path.startsWith('/contacts/')) {
        const ended = this.#requests.begin(method, path);
        res.once('close', () => ended(res.writableFinished ? res.statusCode : null));
        await this.#contactsApi(method, path, req, res);
      } else if (path.startsWith('/_control/')) await this.#control(method, path, req, res);
      else throw new CrmApiError(404, 'not_found', `no route for ${method} ${path}`);
    } catch (error) {
      if (error instanceof CrmApiError) {
        sendError(res, error, error.status === 401 ? { 'www-authenticate': 'Bearer' } : {});
      } else {
        // A bug in the demo CRM, or a client that vanished mid-body: answer if we still can, never crash.
        const reason = error instanceof Error ? error.message : String(error);
        sendError(res, new CrmApiError(500, 'internal_error', `demo crm failed on ${method} ${path}: ${reason}`));
      }
    }
  }

  async #contactsApi(method: string, path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.#store.countRequest(method);
    this.#authenticate(req);
    const route = resolveContactsRoute(method, path);
    const text = await readBody(req);

    // Faults and the request's idempotency key apply to a batch as a whole.
    const fault = this.#faultQueue.take(method, path);
    if (fault) {
      this.#store.countFault(fault.kind);
      if (!(await this.#serveFault(fault, req, res))) return;
    }

    const key = header(req, 'idempotency-key');
    if (key !== undefined && method !== 'GET') {
      const replay = this.#store.findReplay(key, method, route.path);
      if (replay) return send(res, replay, { 'idempotent-replayed': 'true' });
    }

    // One journal line for the change and its key: a crash keeps both (a whole batch) or neither.
    const response = this.#store.atomic(() => {
      const applied =
        route.kind === 'batch' ? this.#applyBatch(text) : applyContactsRequest(this.#store, route, method, text, header(req, 'if-match'));
      // Only applied changes are remembered: a rejected request retried after a fix must run again.
      // A batch answer counts as applied, failed items included: a corrected batch needs a new key.
      if (key !== undefined && method !== 'GET') this.#store.remember(key, method, route.path, applied);
      return applied;
    });
    send(res, response);
  }

  /** `POST /contacts/batch` (see `crm-batch.ts`): 200 with a result per item, in order. */
  #applyBatch(text: string): StoredResponse {
    const items = parseBatch(parseJson(text));
    return { status: 200, body: { results: applyBatch(this.#store, this.#faultQueue, items) } };
  }

  /** Answers with the fault; true when the request should then be handled normally. */
  async #serveFault(fault: Fault, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    switch (fault.kind) {
      case '5xx':
        throw new CrmApiError(fault.status, 'server_error', fault.message);
      case '429':
        sendError(res, new CrmApiError(429, 'rate_limited', fault.message), {
          'retry-after': String(fault.retryAfterSeconds),
        });
        return false;
      case '422':
        throw new CrmApiError(422, 'validation_failed', fault.message);
      case 'reset':
        req.socket.destroy();
        return false;
      case 'slow':
        await this.#sleep(fault.delayMs);
        if (this.#stopped) {
          // Stopping woke us early: neither apply nor answer on a server that is going away.
          req.socket.destroy();
          return false;
        }
        if (fault.apply) return true;
        throw new CrmApiError(504, 'gateway_timeout', fault.message);
      case 'item-422':
        throw new Error('item-422 faults are taken per batch item, never per request');
    }
  }

  async #control(method: string, path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const text = await readBody(req);
    const route = `${method} ${path}`;
    const edit = EDIT_ROUTE.exec(path);
    if (edit && method === 'POST') {
      const id = decodeId(edit[1] ?? '');
      return send(res, withEtag(200, this.#store.editAsRemoteUser(id, parseJson(text))));
    }
    switch (route) {
      case 'POST /_control/faults':
        return sendJson(res, 201, this.#faultQueue.add(parseFaultSpec(parseJson(text))));
      case 'GET /_control/faults':
        return sendJson(res, 200, this.faults());
      case 'DELETE /_control/faults':
        this.clearFaults();
        return sendJson(res, 204, undefined);
      case 'GET /_control/stats':
        return sendJson(res, 200, this.stats());
      case 'POST /_control/stats/reset':
        this.resetStats();
        return sendJson(res, 200, this.stats());
      case 'GET /_control/requests':
        return sendJson(res, 200, { peakInFlight: this.peakInFlight(), requests: this.requests() });
      case 'DELETE /_control/contacts':
        this.wipe();
        return sendJson(res, 204, undefined);
      default:
        throw new CrmApiError(404, 'not_found', `no control route for ${route}`);
    }
  }

  #authenticate(req: IncomingMessage): void {
    const match = /^Bearer\s+(.+)$/i.exec(header(req, 'authorization') ?? '');
    const given = Buffer.from(match?.[1]?.trim() ?? '');
    // Constant-time compare: even a demo should not teach timing-leaky token checks.
    if (given.length !== this.#token.length || !timingSafeEqual(given, this.#token)) {
      throw new CrmApiError(401, 'unauthorized', 'missing or invalid bearer token');
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#sleepers.delete(timer);
        resolve();
      }, ms);
      this.#sleepers.set(timer, resolve);
    });
  }
}
