import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PermanentRemoteError, RateLimitedError, RemoteNotFoundError, TransientRemoteError } from 'tidesync';
import { DemoCrmClient, RemoteVersionConflictError, UnexpectedRemoteResponseError } from './crm-client';
import { DemoCrmServer } from './crm-server';
import { CRM_TEST_TOKEN, type CrmRequestInit, crmRequest, failure, useCrmServer } from './crm-test-kit';

const TOKEN = CRM_TEST_TOKEN;
const alice = { firstName: 'Alice', lastName: 'Liddell', email: 'alice@example.com' };

let server: DemoCrmServer;
let client: DemoCrmClient;

/** A fresh idempotency key per write, as a writer would derive one per change. */
const key = (): string => randomUUID();

/** A plain HTTP call, for what the client deliberately hides (headers, raw statuses, bad bodies). */
const raw = (method: string, path: string, init: CrmRequestInit = {}) => crmRequest(server.url, method, path, init);

useCrmServer((started) => {
  server = started;
  client = new DemoCrmClient({ baseUrl: server.url, token: TOKEN, timeoutMs: 2000 });
});

describe('demo crm contacts api', () => {
  it('should refuse requests without a valid bearer token and apply nothing', async () => {
    expect((await raw('GET', '/contacts', { token: null })).status).toBe(401);
    const wrong = await raw('POST', '/contacts', { token: 'nope', body: JSON.stringify(alice) });
    expect(wrong.status).toBe(401);
    expect(wrong.json.error.code).toBe('unauthorized');
    const error = await failure(new DemoCrmClient({ baseUrl: server.url, token: 'nope' }).list());
    expect(error).toBeInstanceOf(PermanentRemoteError);
    expect(error.status).toBe(401);
    expect(server.contacts()).toHaveLength(0);
    expect(server.stats().writes).toBe(0);
  });

  it('should create, read, list, replace, patch and delete a contact with increasing versions', async () => {
    const created = await client.create({ ...alice, company: 'Wonderland' }, { idempotencyKey: key() });
    expect(created).toEqual({ id: expect.stringMatching(/^c_\d+$/), version: 1, ...alice, phone: null, company: 'Wonderland' });
    expect(await client.get(created.id)).toEqual(created);
    expect(await client.list()).toEqual([created]);

    const alicia = { firstName: 'Alicia', email: 'alicia@example.com' };
    const replaced = await client.replace(created.id, alicia, { idempotencyKey: key() });
    // A full replace clears what it omits.
    expect(replaced).toEqual({ id: created.id, version: 2, ...alicia, lastName: '', phone: null, company: null });

    const patched = await client.patch(created.id, { phone: '+33 1 23' }, { idempotencyKey: key(), ifMatch: 2 });
    expect(patched).toEqual({ ...replaced, version: 3, phone: '+33 1 23' });

    await client.delete(created.id, { idempotencyKey: key() });
    expect(await client.get(created.id)).toBeNull();
    expect(server.stats()).toMatchObject({ writes: 4, writesByContact: { [created.id]: 4 } });
  });

  it('should send the version as an ETag', async () => {
    const created = await client.create(alice, { idempotencyKey: key() });
    server.editAsRemoteUser(created.id, { lastName: 'L.' });
    const response = await raw('GET', `/contacts/${created.id}`);
    expect(response.headers.get('etag')).toBe('"2"');
    expect(response.json.version).toBe(2);
  });

  it('should reject a stale If-Match with the current version and leave the contact unchanged', async () => {
    const created = await client.create(alice, { idempotencyKey: key() });
    const edited = server.editAsRemoteUser(created.id, { company: 'Remote Inc' });
    expect(edited.version).toBe(2);
    expect(server.stats().writes).toBe(1); // the remote user's edit is not our write

    const conflict = await failure(client.patch(created.id, { company: 'Ours' }, { idempotencyKey: key(), ifMatch: 1 }));
    expect(conflict).toBeInstanceOf(RemoteVersionConflictError);
    expect(conflict.code).toBe('remote_version_conflict');
    expect(conflict.currentVersion).toBe(2);
    const staleDelete = client.delete(created.id, { idempotencyKey: key(), ifMatch: '1' });
    expect(await failure(staleDelete)).toBeInstanceOf(RemoteVersionConflictError);
    expect(await client.get(created.id)).toMatchObject({ version: 2, company: 'Remote Inc' });

    const ifMatch = conflict.currentVersion as number;
    const retried = await client.patch(created.id, { company: 'Ours' }, { idempotencyKey: key(), ifMatch });
    expect(retried).toMatchObject({ version: 3, company: 'Ours' });
  });

  it('should map 404 to RemoteNotFoundError for writes and to null for reads', async () => {
    expect(await client.get('c_999')).toBeNull();
    const error = await failure(client.patch('c_999', { lastName: 'x' }, { idempotencyKey: key() }));
    expect(error).toBeInstanceOf(RemoteNotFoundError);
    expect(error.remoteMessage).toBe('contact c_999 does not exist');
  });

  it('should reject invalid contacts with the remote message and apply nothing', async () => {
    const error = await failure(client.create({ firstName: 'Bob', email: 'x' }, { idempotencyKey: key() }));
    expect(error).toBeInstanceOf(PermanentRemoteError);
    expect(error.status).toBe(422);
    expect(error.remoteMessage).toBe('email "x" is not a valid address');
    expect(error.message).toBe('demo crm rejected POST /contacts (422): email "x" is not a valid address');

    const body = await raw('POST', '/contacts', { body: JSON.stringify({ firstName: 'Bob', email: 'x' }) });
    expect(body.json).toEqual({
      error: { code: 'validation_failed', message: 'email "x" is not a valid address', field: 'email' },
    });
    const unknown = await raw('POST', '/contacts', { body: JSON.stringify({ ...alice, nickname: 'Al' }) });
    expect(unknown.json.error).toMatchObject({ code: 'validation_failed', field: 'nickname' });
    const blank = await raw('POST', '/contacts', { body: JSON.stringify({ firstName: ' ', email: 'a@b' }) });
    expect(blank.json.error).toMatchObject({ code: 'validation_failed', field: 'firstName' });
    expect(server.contacts()).toHaveLength(0);
  });

  it('should answer 400 naming the problem for bad JSON and keep serving', async () => {
    const broken = await raw('POST', '/contacts', { body: '{"firstName": "Al' });
    expect(broken.status).toBe(400);
    expect(broken.json.error.code).toBe('invalid_json');
    expect(broken.json.error.message).toMatch(/^request body is not valid JSON: /);
    const empty = await raw('PUT', '/contacts/c_1', { body: '' });
    expect(empty.json.error.message).toBe('request body is empty; expected a JSON object');
    expect((await raw('POST', '/contacts', { body: '[1]' })).status).toBe(400);
    expect((await raw('POST', '/_control/faults', { body: 'nope' })).status).toBe(400);
    expect((await raw('GET', '/contacts/%E0%A4%A')).status).toBe(400);
    expect((await raw('GET', '/contacts')).status).toBe(200);
  });
});

describe('demo crm idempotency', () => {
  it('should replay the first response for a repeated key without writing again', async () => {
    const idempotencyKey = key();
    const init = { body: JSON.stringify(alice), headers: { 'idempotency-key': idempotencyKey } };
    const first = await raw('POST', '/contacts', init);
    const second = await raw('POST', '/contacts', init);
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(second.json).toEqual(first.json);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(server.contacts()).toHaveLength(1);
    expect(server.stats()).toMatchObject({ writes: 1, replays: 1 });
  });

  it('should replay a delete, while a new key sees the contact gone', async () => {
    const created = await client.create(alice, { idempotencyKey: key() });
    const idempotencyKey = key();
    await client.delete(created.id, { idempotencyKey });
    await expect(client.delete(created.id, { idempotencyKey })).resolves.toBeUndefined();
    expect(await failure(client.delete(created.id, { idempotencyKey: key() }))).toBeInstanceOf(RemoteNotFoundError);
    expect(server.stats().writesByContact[created.id]).toBe(2);
  });

  it('should not remember a rejected request, so the corrected retry is applied', async () => {
    const idempotencyKey = key();
    const rejected = client.create({ firstName: 'Bob', email: 'bob' }, { idempotencyKey });
    expect(await failure(rejected)).toBeInstanceOf(PermanentRemoteError);
    const created = await client.create({ firstName: 'Bob', email: 'bob@example.com' }, { idempotencyKey });
    expect(created.email).toBe('bob@example.com');
  });

  it('should refuse a key reused for another route', async () => {
    const idempotencyKey = key();
    const created = await client.create(alice, { idempotencyKey });
    const error = await failure(client.patch(created.id, { lastName: 'x' }, { idempotencyKey }));
    expect(error).toBeInstanceOf(PermanentRemoteError);
    expect(error.remoteMessage).toContain(`first used for POST /contacts`);
  });
});

describe('demo crm faults', () => {
  it('should map an injected 5xx to TransientRemoteError and not apply the request', async () => {
    server.injectFault({ kind: '5xx', status: 502 });
    const error = await failure(client.create(alice, { idempotencyKey: key() }));
    expect(error).toBeInstanceOf(TransientRemoteError);
    expect(error.status).toBe(502);
    expect(server.contacts()).toHaveLength(0);
    await expect(client.create(alice, { idempotencyKey: key() })).resolves.toMatchObject({ version: 1 });
    expect(server.stats()).toMatchObject({ faultsServed: 1, faultsByKind: { '5xx': 1 }, writes: 1, requests: 2, byMethod: { POST: 2 } });
  });

  it('should map a 429 to RateLimitedError with the Retry-After delay', async () => {
    const fault = JSON.stringify({ kind: '429', retryAfterSeconds: 7 });
    const queued = await raw('POST', '/_control/faults', { token: null, body: fault });
    expect(queued.status).toBe(201);
    const error = await failure(client.list());
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error.retryAfterMs).toBe(7000);
  });

  it('should map an injected 422 to PermanentRemoteError with the remote message', async () => {
    server.injectFault({ kind: '422', message: 'company "Acme" is blocked' });
    const error = await failure(client.create(alice, { idempotencyKey: key() }));
    expect(error).toBeInstanceOf(PermanentRemoteError);
    expect(error.remoteMessage).toBe('company "Acme" is blocked');
    expect(server.contacts()).toHaveLength(0);
  });

  it('should map a reset connection to TransientRemoteError', async () => {
    server.injectFault({ kind: 'reset' });
    const error = await failure(client.create(alice, { idempotencyKey: key() }));
    expect(error).toBeInstanceOf(TransientRemoteError);
    expect(error.message).toMatch(/^demo crm unreachable for POST \/contacts: /);
    expect(server.contacts()).toHaveLength(0);
  });

  it('should map a response slower than the client timeout to TransientRemoteError', async () => {
    server.injectFault({ kind: 'slow', delayMs: 500 });
    const impatient = new DemoCrmClient({ baseUrl: server.url, token: TOKEN, timeoutMs: 100 });
    const error = await failure(impatient.create(alice, { idempotencyKey: key() }));
    expect(error).toBeInstanceOf(TransientRemoteError);
    expect(error.message).toBe('demo crm did not answer POST /contacts within 100ms');
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(server.contacts()).toHaveLength(0);
  });

  it('should let a retry with the same key replay a write that was applied after the client gave up', async () => {
    server.injectFault({ kind: 'slow', delayMs: 300, apply: true });
    const impatient = new DemoCrmClient({ baseUrl: server.url, token: TOKEN, timeoutMs: 100 });
    const idempotencyKey = key();
    expect(await failure(impatient.create(alice, { idempotencyKey }))).toBeInstanceOf(TransientRemoteError);
    await new Promise((resolve) => setTimeout(resolve, 400));
    const retried = await client.create(alice, { idempotencyKey });
    expect(server.contacts()).toEqual([retried]);
    expect(server.stats()).toMatchObject({ writes: 1, replays: 1 });
  });

  it('should only fault requests matching the method and path filters, count times', async () => {
    const created = await client.create(alice, { idempotencyKey: key() });
    server.injectFault({ kind: '5xx', method: 'put', path: '/contacts/', count: 2 });
    await expect(client.patch(created.id, { lastName: 'x' }, { idempotencyKey: key() })).resolves.toMatchObject({ version: 2 });
    for (let attempt = 0; attempt < 2; attempt += 1) {
      expect(await failure(client.replace(created.id, alice, { idempotencyKey: key() }))).toBeInstanceOf(TransientRemoteError);
    }
    await expect(client.replace(created.id, alice, { idempotencyKey: key() })).resolves.toMatchObject({ version: 3 });
  });

  it('should refuse an invalid fault and clear queued ones', async () => {
    const invalid = await raw('POST', '/_control/faults', { body: JSON.stringify({ kind: 'meteor' }) });
    expect(invalid.status).toBe(422);
    expect(invalid.json.error.field).toBe('kind');
    server.injectFault({ kind: '5xx' });
    expect((await raw('DELETE', '/_control/faults')).status).toBe(204);
    await expect(client.list()).resolves.toEqual([]);
  });
});

describe('demo crm control endpoints and client edges', () => {
  it('should edit as a remote user, report and reset stats, and wipe over HTTP', async () => {
    const created = await client.create(alice, { idempotencyKey: key() });
    const edit = { token: null, body: JSON.stringify({ phone: '555' }) };
    const edited = await raw('POST', `/_control/contacts/${created.id}/edit`, edit);
    expect(edited.json).toMatchObject({ version: 2, phone: '555' });
    expect((await raw('GET', '/_control/stats')).json).toEqual({
      requests: 1,
      byMethod: { POST: 1 },
      writes: 1,
      writesByContact: { [created.id]: 1 },
      replays: 0,
      faultsServed: 0,
      faultsByKind: {},
    });
    expect((await raw('POST', '/_control/stats/reset')).json.requests).toBe(0);
    expect((await raw('DELETE', '/_control/contacts')).status).toBe(204);
    expect(await client.list()).toEqual([]);
  });

  it('should log each request with when it arrived and ended, and the most in flight at once', async () => {
    server.injectFault({ kind: 'slow', delayMs: 200, apply: true, count: 3 });
    const began = Date.now();
    await Promise.all([1, 2, 3].map((i) => client.create({ ...alice, email: `a${i}@example.com` }, { idempotencyKey: key() })));
    await client.list();
    const logged = server.requests();
    expect(logged.map((r) => [r.method, r.path, r.status])).toEqual([
      ['POST', '/contacts', 201],
      ['POST', '/contacts', 201],
      ['POST', '/contacts', 201],
      ['GET', '/contacts', 200],
    ]);
    expect(logged[0]?.at).toBeGreaterThanOrEqual(began - 1);
    expect((logged[0]?.endedAt ?? 0) - (logged[0]?.at ?? 0)).toBeGreaterThanOrEqual(190);
    expect(server.peakInFlight()).toBe(3);
    const http = await raw('GET', '/_control/requests', { token: null });
    expect(http.json).toMatchObject({ peakInFlight: 3, requests: expect.arrayContaining([expect.objectContaining({ method: 'GET' })]) });
    server.resetStats();
    expect({ requests: server.requests(), peak: server.peakInFlight() }).toEqual({ requests: [], peak: 0 });
  });

  it('should map a refused connection to TransientRemoteError', async () => {
    const gone = await DemoCrmServer.start({ token: TOKEN });
    await gone.stop();
    const error = await failure(new DemoCrmClient({ baseUrl: gone.url, token: TOKEN }).list());
    expect(error).toBeInstanceOf(TransientRemoteError);
    expect(error.message).toContain('ECONNREFUSED');
  });

  it('should pass a caller cancellation through instead of calling it a remote failure', async () => {
    server.injectFault({ kind: 'slow', delayMs: 500 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('activity cancelled')), 50);
    const error = await failure(client.list({ signal: controller.signal }));
    expect(error).not.toBeInstanceOf(TransientRemoteError);
    expect(error.message).toBe('activity cancelled');
  });

  it('should name the field path when the remote answers an unexpected shape', async () => {
    const liar = createServer((_req, res) => {
      // `version` as a string: the kind of drift a real remote's API change would bring.
      const body = JSON.stringify([{ ...alice, id: 'c_1', version: '1', phone: null, company: null }]);
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    });
    await new Promise<void>((resolve) => liar.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = liar.address() as AddressInfo;
      const error = await failure(new DemoCrmClient({ baseUrl: `http://127.0.0.1:${port}`, token: TOKEN }).list());
      expect(error).toBeInstanceOf(UnexpectedRemoteResponseError);
      expect(error.code).toBe('remote_unexpected_response');
      expect(error.message).toMatch(/^demo crm answered GET \/contacts with an unexpected body at \[0\]\.version: /);
    } finally {
      liar.closeAllConnections();
      await new Promise((resolve) => liar.close(resolve));
    }
  });
});
