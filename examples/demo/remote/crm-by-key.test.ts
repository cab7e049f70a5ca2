import { randomUUID } from 'node:crypto';
import { ConfigurationError, PermanentRemoteError, RateLimitedError, RemoteNotFoundError, TransientRemoteError } from 'tidesync';
import { DemoCrmClient } from './crm-client';
import { type DemoCrmServer } from './crm-server';
import { CRM_TEST_TOKEN, type CrmRequestInit, crmRequest, failure, useCrmServer } from './crm-test-kit';

const TOKEN = CRM_TEST_TOKEN;
const alice = { firstName: 'Alice', lastName: 'Liddell', email: 'alice@example.com' };
const bob = { firstName: 'Bob', email: 'bob@example.com' };
const key = (): string => randomUUID();

let server: DemoCrmServer;
let client: DemoCrmClient;

/** A plain HTTP call with the token; `body` is sent as JSON. */
const raw = (method: string, path: string, init: CrmRequestInit = {}) => crmRequest(server.url, method, path, init);

/** `PUT /contacts/by-key/:externalKey`, with an Idempotency-Key when given. */
const put = (externalKey: string, fields: unknown, idempotencyKey?: string) =>
  raw('PUT', `/contacts/by-key/${encodeURIComponent(externalKey)}`, {
    body: fields,
    ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
  });

useCrmServer((started) => {
  server = started;
  client = new DemoCrmClient({ baseUrl: server.url, token: TOKEN, timeoutMs: 2000 });
});

describe('demo crm upsert by external key', () => {
  it('should create a contact carrying the key, then replace all its fields in place', async () => {
    const created = await put('ext-1', { ...alice, company: 'Wonderland' });
    expect(created.status).toBe(201);
    expect(created.headers.get('etag')).toBe('"1"');
    expect(created.json).toEqual({
      id: expect.stringMatching(/^c_\d+$/),
      version: 1,
      ...alice,
      phone: null,
      company: 'Wonderland',
      externalKey: 'ext-1',
    });

    const replaced = await put('ext-1', bob);
    expect(replaced.status).toBe(200);
    expect(replaced.headers.get('etag')).toBe('"2"');
    // A full replace: what the body omits is cleared, the id and the key stay.
    expect(replaced.json).toEqual({
      id: created.json.id,
      version: 2,
      ...bob,
      lastName: '',
      phone: null,
      company: null,
      externalKey: 'ext-1',
    });
    expect(server.contacts()).toEqual([replaced.json]);
    expect(server.contactByKey('ext-1')).toEqual(replaced.json);
    expect((await raw('GET', `/contacts/${created.json.id}`)).json).toEqual(replaced.json);
    expect(server.stats()).toMatchObject({ writes: 2, writesByContact: { [created.json.id]: 2 }, byMethod: { PUT: 2 } });
  });

  it('should keep contacts made without a key free of externalKey, and keep a key through updates by id', async () => {
    const plain = await raw('POST', '/contacts', { body: alice });
    expect(plain.json).not.toHaveProperty('externalKey');
    const keyed = await put('ext-1', bob);
    const patched = await raw('PATCH', `/contacts/${keyed.json.id}`, { body: { company: 'Acme' } });
    expect(patched.json).toMatchObject({ version: 2, company: 'Acme', externalKey: 'ext-1' });
    expect((await raw('PUT', `/contacts/${keyed.json.id}`, { body: bob })).json).toMatchObject({ version: 3, externalKey: 'ext-1' });
    // The key is not a field: a body cannot set or change it.
    const smuggled = await raw('POST', '/contacts', { body: { ...alice, externalKey: 'ext-2' } });
    expect(smuggled.json.error).toMatchObject({ code: 'validation_failed', field: 'externalKey' });
    expect(server.contacts().map((contact) => contact.externalKey)).toEqual([undefined, 'ext-1']);
  });

  it('should replay the first answer for a repeated Idempotency-Key, sharing the records of other routes', async () => {
    const idempotencyKey = key();
    const first = await put('ext-1', alice, idempotencyKey);
    const again = await put('ext-1', bob, idempotencyKey);
    expect(again.status).toBe(201);
    expect(again.json).toEqual(first.json);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.headers.get('etag')).toBe('"1"');
    expect(server.contacts()).toEqual([first.json]);
    expect(server.stats()).toMatchObject({ writes: 1, replays: 1 });

    // The same key spelled with another escape is the same route; another route is a misuse.
    const slash = await put('a/b', alice, idempotencyKey.replace(/.$/, 'x'));
    const lower = await raw('PUT', '/contacts/by-key/a%2fb', {
      body: bob,
      headers: { 'idempotency-key': idempotencyKey.replace(/.$/, 'x') },
    });
    expect(lower.json).toEqual(slash.json);
    const reused = await raw('POST', '/contacts', { body: alice, headers: { 'idempotency-key': idempotencyKey } });
    expect(reused.status).toBe(422);
    expect(reused.json.error.code).toBe('idempotency_key_reused');
    expect((await put('ext-2', alice, idempotencyKey)).json.error.code).toBe('idempotency_key_reused');
  });

  it('should validate the body as POST /contacts does, refuse If-Match and other methods, and apply nothing', async () => {
    const invalid = await put('ext-1', { firstName: 'Eve', email: 'eve' });
    expect(invalid.status).toBe(422);
    expect(invalid.json.error).toEqual({ code: 'validation_failed', message: 'email "eve" is not a valid address', field: 'email' });
    expect((await put('ext-1', { ...alice, nickname: 'Al' })).json.error.field).toBe('nickname');
    expect((await raw('PUT', '/contacts/by-key/ext-1')).json.error.code).toBe('invalid_json');
    const conditional = await raw('PUT', '/contacts/by-key/ext-1', { body: alice, headers: { 'if-match': '"1"' } });
    expect(conditional.status).toBe(400);
    expect(conditional.json.error.code).toBe('if_match_unsupported');
    expect((await raw('GET', '/contacts/by-key/ext-1')).status).toBe(405);
    expect((await raw('PATCH', '/contacts/by-key/ext-1', { body: alice })).status).toBe(405);
    expect((await raw('PUT', '/contacts/by-key/%E0%A4%A', { body: alice })).json.error.code).toBe('invalid_path');
    expect((await raw('PUT', '/contacts/by-key/', { body: alice })).status).toBe(404);
    expect(server.contacts()).toEqual([]);
  });

  it('should delete by key, answer 404 once it is gone, and free the key', async () => {
    const created = await put('ext-1', alice);
    const idempotencyKey = key();
    const deleted = await raw('DELETE', '/contacts/by-key/ext-1', { headers: { 'idempotency-key': idempotencyKey } });
    expect(deleted.status).toBe(204);
    expect(server.contacts()).toEqual([]);
    const replayed = await raw('DELETE', '/contacts/by-key/ext-1', { headers: { 'idempotency-key': idempotencyKey } });
    expect(replayed.status).toBe(204);
    expect(replayed.headers.get('idempotent-replayed')).toBe('true');
    const gone = await raw('DELETE', '/contacts/by-key/ext-1', { headers: { 'idempotency-key': key() } });
    expect(gone.status).toBe(404);
    expect(gone.json.error).toEqual({ code: 'not_found', message: 'no contact has external key "ext-1"' });

    const recreated = await put('ext-1', alice);
    expect(recreated.status).toBe(201);
    expect(recreated.json.id).not.toBe(created.json.id);
    // Deleting by id frees the key as well.
    expect((await raw('DELETE', `/contacts/${recreated.json.id}`)).status).toBe(204);
    expect(server.contactByKey('ext-1')).toBeUndefined();
    expect((await put('ext-1', alice)).status).toBe(201);
  });

  it('should forget every key when the contacts are wiped', async () => {
    await put('ext-1', alice);
    expect((await raw('DELETE', '/_control/contacts')).status).toBe(204);
    expect(server.contactByKey('ext-1')).toBeUndefined();
    expect((await raw('DELETE', '/contacts/by-key/ext-1')).status).toBe(404);
    const again = await put('ext-1', alice);
    expect(again.status).toBe(201);
    expect(again.json.version).toBe(1);
  });
});

describe('demo crm faults on the by-key routes', () => {
  it('should fault the by-key routes by method and path and apply nothing', async () => {
    server.injectFault({ kind: '5xx', status: 502, method: 'PUT', path: '/contacts/by-key/' });
    server.injectFault({ kind: '429', retryAfterSeconds: 4, method: 'DELETE', path: '/contacts/by-key/ext-1' });
    expect(await failure(client.upsertByKey('ext-1', alice, { idempotencyKey: key() }))).toMatchObject({
      constructor: TransientRemoteError,
      status: 502,
    });
    expect(server.contacts()).toEqual([]);
    await client.upsertByKey('ext-1', alice, { idempotencyKey: key() });
    expect(await failure(client.deleteByKey('ext-1', { idempotencyKey: key() }))).toMatchObject({
      constructor: RateLimitedError,
      retryAfterMs: 4000,
    });
    server.injectFault({ kind: 'reset', path: '/contacts/by-key/' });
    expect(await failure(client.deleteByKey('ext-1', { idempotencyKey: key() }))).toBeInstanceOf(TransientRemoteError);
    expect(server.contacts()).toHaveLength(1);
    expect(server.stats()).toMatchObject({ faultsServed: 3, faultsByKind: { '5xx': 1, '429': 1, reset: 1 } });
  });

  it('should let a retry with the same key replay an upsert applied after the client gave up', async () => {
    server.injectFault({ kind: 'slow', delayMs: 300, apply: true, path: '/contacts/by-key/' });
    const impatient = new DemoCrmClient({ baseUrl: server.url, token: TOKEN, timeoutMs: 100 });
    const idempotencyKey = key();
    expect(await failure(impatient.upsertByKey('ext-1', alice, { idempotencyKey }))).toBeInstanceOf(TransientRemoteError);
    await new Promise((resolve) => setTimeout(resolve, 400));
    const retried = await client.upsertByKey('ext-1', alice, { idempotencyKey });
    expect(retried.version).toBe(1);
    expect(server.contacts()).toEqual([retried]);
    expect(server.stats()).toMatchObject({ writes: 1, replays: 1 });
  });
});

describe('demo crm client by external key', () => {
  it('should upsert and delete by key, the version telling a create from a replace', async () => {
    const externalKey = 'crm/ü 1?#';
    const created = await client.upsertByKey(externalKey, alice, { idempotencyKey: key() });
    expect(created).toEqual({ id: expect.any(String), version: 1, ...alice, phone: null, company: null, externalKey });
    const replaced = await client.upsertByKey(externalKey, { ...bob, phone: '555' }, { idempotencyKey: key() });
    expect(replaced).toEqual({ id: created.id, version: 2, ...bob, lastName: '', phone: '555', company: null, externalKey });
    expect(await client.get(created.id)).toEqual(replaced);
    expect(await client.list()).toEqual([replaced]);

    await expect(client.deleteByKey(externalKey, { idempotencyKey: key() })).resolves.toBeUndefined();
    expect(await client.get(created.id)).toBeNull();
    const gone = await failure(client.deleteByKey(externalKey, { idempotencyKey: key() }));
    expect(gone).toBeInstanceOf(RemoteNotFoundError);
    expect(gone.remoteMessage).toBe(`no contact has external key "${externalKey}"`);
  });

  it('should map refusals to classified errors and refuse an empty key before sending', async () => {
    const invalid = await failure(client.upsertByKey('ext-1', { firstName: 'Eve', email: 'eve' }, { idempotencyKey: key() }));
    expect(invalid).toBeInstanceOf(PermanentRemoteError);
    expect(invalid.message).toBe('demo crm rejected PUT /contacts/by-key/ext-1 (422): email "eve" is not a valid address');
    expect(await failure(client.upsertByKey('', alice, { idempotencyKey: key() }))).toBeInstanceOf(ConfigurationError);
    expect(await failure(client.deleteByKey('', { idempotencyKey: key() }))).toBeInstanceOf(ConfigurationError);
    expect(server.stats().requests).toBe(1);
  });
});
