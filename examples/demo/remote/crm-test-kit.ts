/**
 * For the demo CRM's tests: one CRM per test file (`useCrmServer`), and plain HTTP calls to it,
 * for what the client deliberately hides (headers, raw statuses, bad bodies). It uses jest's
 * globals, so the examples build (Node's types only) leaves it out, as it leaves out the tests.
 */
import { DemoCrmServer } from './crm-server';

/** The token the tests start their CRM with. */
export const CRM_TEST_TOKEN = 'test-token';

/**
 * Runs a demo CRM for the test file that calls this: started before its tests and handed to
 * `started`, stopped after them, and emptied of faults, contacts and stats before each test.
 */
export function useCrmServer(started: (server: DemoCrmServer) => void): void {
  let server: DemoCrmServer | undefined;
  beforeAll(async () => {
    server = await DemoCrmServer.start({ token: CRM_TEST_TOKEN });
    started(server);
  });
  afterAll(async () => {
    await server?.stop();
  });
  beforeEach(() => {
    server?.clearFaults();
    server?.wipe();
    server?.resetStats();
  });
}

/** A request of `crmRequest`. */
export interface CrmRequestInit {
  /** A string goes as it is (bad bodies); anything else as JSON. */
  readonly body?: unknown;
  /** Default `CRM_TEST_TOKEN`; `null` sends no Authorization header. */
  readonly token?: string | null;
  readonly idempotencyKey?: string;
  readonly headers?: Record<string, string>;
}

/** One HTTP call to the CRM at `baseUrl`; the answer's JSON is parsed when there is one. */
export async function crmRequest(baseUrl: string, method: string, path: string, init: CrmRequestInit = {}) {
  const headers: Record<string, string> = {};
  const token = init.token === undefined ? CRM_TEST_TOKEN : init.token;
  if (token !== null) headers['authorization'] = `Bearer ${token}`;
  if (init.idempotencyKey !== undefined) headers['idempotency-key'] = init.idempotencyKey;
  let body: { body?: string } = {};
  if (typeof init.body === 'string') body = { body: init.body };
  else if (init.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = { body: JSON.stringify(init.body) };
  }
  Object.assign(headers, init.headers);
  const response = await fetch(`${baseUrl}${path}`, { method, headers, ...body });
  const text = await response.text();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON bodies
  return { status: response.status, headers: response.headers, json: text === '' ? undefined : (JSON.parse(text) as any) };
}

/** Runs `promise`, expecting it to fail, and returns the error for closer inspection. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests inspect whatever was thrown
export async function failure(promise: Promise<unknown>): Promise<any> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail, but it succeeded');
}
