import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PermanentRemoteError, RemoteNotFoundError, RemoteVersionConflictError, TransientRemoteError } from 'tidesync';
import { DemoCrmClient, UnexpectedRemoteResponseError } from './crm-client';
import { type DemoCrmServer } from './crm-server';
import { CRM_TEST_TOKEN, crmRequest, useCrmServer } from './crm-test-kit';

const TOKEN = CRM_TEST_TOKEN;
const alice = { firstName: 'Alice', lastName: 'Liddell', email: 'alice@example.com' };
const bob = { firstName: 'Bob', email: 'bob@example.com' };
const key = (): string => randomUUID();

let server: DemoCrmServer;

/** `POST /contacts/batch` over plain HTTP; `body` is sent as JSON unless it is a string. */
const postBatch = (body: unknown, init: { idempotencyKey?: string; token?: string | null } = {}) =>
  crmRequest(server.url, 'POST', '/contacts/batch', { body, ...init, headers: { 'content-type': 'application/json' } });

/** Creates contacts through a batch and returns them in order. */
async function seed(...fields: Array<Record<string, unknown>>) {
  const created = await postBatch({ items: fields.map((f, index) => ({ key: `seed${index}`, fields: f })) });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the contacts of the answer
  return created.json.results.map((result: any) => result.contact as { id: string; version: number });
}

useCrmServer((started) => {
  server = started;
});

describe('demo crm batch upsert', () => {
  it('should create and replace contacts in one request, answering each item in input order', async () => {
    const [first] = await seed(alice);
    const answer = await postBatch({
      items: [
        { key: 'b', fields: bob },
        { key: 'a', id: first.id, fields: { ...alice, company: 'Wonderland' }, ifMatch: 1 },
        { key: 'c', fields: { firstName: 'Carol', email: 'carol@example.com', phone: '555' } },
      ],
    });
    expect(answer.status).toBe(200);
    expect(answer.json.results).toEqual([
      { key: 'b', status: 201, contact: { id: expect.any(String), version: 1, ...bob, lastName: '', phone: null, company: null } },
      { key: 'a', status: 200, contact: { ...first, version: 2, company: 'Wonderland' } },
      { key: 'c', status: 201, contact: expect.objectContaining({ version: 1, phone: '555' }) },
    ]);
    const [b, a, c] = answer.json.results.map((result: { contact: unknown }) => result.contact);
    expect(server.contacts()).toEqual([a, b, c]);
    expect(server.stats()).toMatchObject({ requests: 2, byMethod: { POST: 2 }, writes: 4 });
  });

  it('should fail only the refused items, with 404, 409, 412 and 422 results in order', async () => {
    const [first, second] = await seed(alice, bob);
    const answer = await postBatch({
      items: [
        { key: 'missing', id: 'c_999', fields: alice },
        { key: 'stale', id: first.id, fields: alice, ifMatch: '"7"' },
        { key: 'invalid', fields: { firstName: 'Eve', email: 'eve' } },
        { key: 'patched', id: second.id, fields: { company: 'Acme' }, partial: true },
        { key: 'twice', id: second.id, fields: bob },
        { key: 'created', fields: { firstName: 'Dan', email: 'dan@example.com' } },
      ],
    });
    expect(answer.status).toBe(200);
    expect(answer.json.results).toEqual([
      { key: 'missing', status: 404, error: { code: 'not_found', message: 'contact c_999 does not exist' } },
      {
        key: 'stale',
        status: 412,
        error: { code: 'version_conflict', message: `contact ${first.id} is at version 1, but If-Match asked for "7"`, currentVersion: 1 },
      },
      { key: 'invalid', status: 422, error: { code: 'validation_failed', message: 'email "eve" is not a valid address', field: 'email' } },
      { key: 'patched', status: 200, contact: { ...second, version: 2, company: 'Acme' } },
      {
        key: 'twice',
        status: 409,
        error: { code: 'duplicate_id', message: `contact ${second.id} of items[4] is already changed by items[3]` },
      },
      { key: 'created', status: 201, contact: expect.objectContaining({ version: 1, firstName: 'Dan' }) },
    ]);
    expect(server.contacts()).toHaveLength(3);
    expect(server.stats().writes).toBe(4); // the two seeds, the patch and the create
  });

  it('should replay the first answer for a repeated Idempotency-Key, refused items included', async () => {
    const idempotencyKey = key();
    const body = {
      items: [
        { key: 'a', fields: alice },
        { key: 'bad', fields: { firstName: 'x', email: 'x' } },
      ],
    };
    const first = await postBatch(body, { idempotencyKey });
    const again = await postBatch(body, { idempotencyKey });
    expect(again.status).toBe(200);
    expect(again.json).toEqual(first.json);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(server.contacts()).toHaveLength(1);
    expect(server.stats()).toMatchObject({ writes: 1, replays: 1 });
  });

  it('should answer an item from its own idempotency key, shared with the single-contact routes', async () => {
    const single = key();
    const created = await fetch(`${server.url}/contacts`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'idempotency-key': single },
      body: JSON.stringify(alice),
    });
    const contact = (await created.json()) as { id: string };
    const item = key();
    const body = {
      items: [
        { key: 'again', fields: alice, idempotencyKey: single },
        { key: 'new', fields: bob, idempotencyKey: item },
        { key: 'reused', id: contact.id, fields: alice, idempotencyKey: single },
      ],
    };
    const answer = await postBatch(body);
    expect(answer.json.results).toEqual([
      { key: 'again', status: 201, contact },
      { key: 'new', status: 201, contact: expect.objectContaining({ version: 1, firstName: 'Bob' }) },
      { key: 'reused', status: 422, error: expect.objectContaining({ code: 'idempotency_key_reused' }) },
    ]);
    // A second batch, with other items around it: the item is not created again.
    const retried = await postBatch({ items: [{ key: 'other', fields: { ...bob, email: 'bob2@example.com' } }, body.items[1]] });
    expect(retried.json.results[1]).toEqual(answer.json.results[1]);
    expect(server.contacts().map((c) => c.email)).toEqual(['alice@example.com', 'bob@example.com', 'bob2@example.com']);
  });

  it('should refuse a batch of more than 100 items, an empty one and a malformed one as a whole', async () => {
    const items = Array.from({ length: 101 }, (_, index) => ({ key: `k${index}`, fields: alice }));
    const tooMany = await postBatch({ items });
    expect(tooMany.status).toBe(400);
    expect(tooMany.json.error).toEqual({ code: 'too_many_items', message: 'batch has 101 items; the limit is 100', field: 'items' });
    expect((await postBatch({ items: items.slice(0, 100) })).status).toBe(200);

    const empty = await postBatch({ items: [] });
    expect(empty.json.error.code).toBe('invalid_batch');
    const noKey = await postBatch({ items: [{ key: 'a', fields: alice }, { fields: bob }] });
    expect(noKey.json.error).toMatchObject({ code: 'invalid_batch', field: 'items[1].key' });
    const duplicate = await postBatch({
      items: [
        { key: 'a', fields: alice },
        { key: 'a', fields: bob },
      ],
    });
    expect(duplicate.json.error.message).toBe('items[1].key "a" repeats items[0].key; keys must be unique in a batch');
    const conditionalCreate = await postBatch({ items: [{ key: 'a', fields: alice, ifMatch: 1 }] });
    expect(conditionalCreate.json.error).toMatchObject({ code: 'invalid_batch', field: 'items[0].id' });
    expect((await postBatch('{"items": [')).json.error.code).toBe('invalid_json');
    expect(server.contacts()).toHaveLength(100);
  });

  it('should refuse a batch without a valid bearer token, or with another method, and apply nothing', async () => {
    const denied = await postBatch({ items: [{ key: 'a', fields: alice }] }, { token: 'nope' });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('www-authenticate')).toBe('Bearer');
    expect((await postBatch({ items: [{ key: 'a', fields: alice }] }, { token: null })).status).toBe(401);
    const get = await fetch(`${server.url}/contacts/batch`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(get.status).toBe(405);
    expect(server.contacts()).toHaveLength(0);
  });
});

describe('demo crm batch faults', () => {
  it('should fail the items matching an item-422 fault by email or key, and apply the others', async () => {
    server.injectFault({ kind: 'item-422', match: 'bob@example.com', message: 'email domain is blocked' });
    server.injectFault({ kind: 'item-422', match: 'k3' });
    const answer = await postBatch({
      items: [
        { key: 'k1', fields: alice },
        { key: 'k2', fields: bob },
        { key: 'k3', fields: { firstName: 'Carol', email: 'carol@example.com' } },
        { key: 'k4', fields: { ...bob, firstName: 'Bobby' } },
      ],
    });
    expect(answer.json.results.map((result: { status: number }) => result.status)).toEqual([201, 422, 422, 201]);
    expect(answer.json.results[1].error).toEqual({ code: 'validation_failed', message: 'email domain is blocked' });
    expect(answer.json.results[2].error.message).toBe('injected validation failure of this item');
    expect(server.stats()).toMatchObject({ faultsServed: 2, faultsByKind: { 'item-422': 2 }, writes: 2 });
    expect(server.faults()).toEqual([]);
  });

  it('should fail a whole batch with a request fault and keep item faults for later items', async () => {
    server.injectFault({ kind: 'item-422' });
    server.injectFault({ kind: '5xx', status: 503, path: '/contacts/batch' });
    const failed = await postBatch({ items: [{ key: 'a', fields: alice }] });
    expect(failed.status).toBe(503);
    expect(server.faults()).toEqual([expect.objectContaining({ kind: 'item-422', remaining: 1 })]);
    server.injectFault({ kind: '429', retryAfterSeconds: 3, method: 'POST' });
    const limited = await postBatch({ items: [{ key: 'a', fields: alice }] });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('3');
    const answered = await postBatch({
      items: [
        { key: 'a', fields: alice },
        { key: 'b', fields: bob },
      ],
    });
    expect(answered.json.results.map((result: { status: number }) => result.status)).toEqual([422, 201]);
  });

  it('should refuse item-422 faults with a method or path, and match on other kinds', () => {
    expect(() => server.injectFault({ kind: 'item-422', path: '/contacts/batch' })).toThrow(/item-422 fault matches batch items/);
    expect(() => server.injectFault({ kind: '5xx', match: 'k1' })).toThrow('invalid fault match: match applies only to item-422 faults');
  });
});

describe('demo crm client batch upsert', () => {
  const client = () => new DemoCrmClient({ baseUrl: server.url, token: TOKEN, timeoutMs: 2000 });

  it('should map refused items to tidesync errors, in input order, beside the applied ones', async () => {
    const [first, second] = await seed(alice, bob);
    server.injectFault({ kind: 'item-422', match: 'blocked', message: 'company is blocked' });
    const results = await client().batchUpsert(
      [
        { key: 'created', fields: { firstName: 'Carol', email: 'carol@example.com' } },
        { key: 'missing', id: 'c_999', fields: alice },
        { key: 'stale', id: first.id, fields: alice, ifMatch: 5 },
        { key: 'blocked', fields: bob },
        { key: 'patched', id: second.id, fields: { phone: '555' }, partial: true, ifMatch: second.version },
        { key: 'twice', id: second.id, fields: bob },
      ],
      { idempotencyKey: key() },
    );
    expect(results.map((result) => [result.key, result.ok, result.status])).toEqual([
      ['created', true, 201],
      ['missing', false, 404],
      ['stale', false, 412],
      ['blocked', false, 422],
      ['patched', true, 200],
      ['twice', false, 409],
    ]);
    const [, missing, stale, blocked, patched, twice] = results.map((result) => (result.ok ? result.contact : result.error));
    expect(missing).toBeInstanceOf(RemoteNotFoundError);
    expect(missing).toMatchObject({ remoteMessage: 'contact c_999 does not exist' });
    expect(stale).toBeInstanceOf(RemoteVersionConflictError);
    expect(stale).toMatchObject({ currentVersion: 1, code: 'remote_version_conflict' });
    expect(blocked).toBeInstanceOf(PermanentRemoteError);
    expect(blocked).toMatchObject({ status: 422, remoteMessage: 'company is blocked' });
    expect((blocked as Error).message).toBe('demo crm rejected item "blocked" of POST /contacts/batch (422): company is blocked');
    expect(patched).toMatchObject({ ...bob, phone: '555', version: 2 });
    expect(twice).toBeInstanceOf(PermanentRemoteError);
    expect(twice).toMatchObject({ status: 409 });
  });

  it('should throw a failure of the whole request as a classified error', async () => {
    const one = [{ key: 'a', fields: alice }];
    server.injectFault({ kind: '5xx', status: 502, path: '/contacts/batch' });
    await expect(client().batchUpsert(one, { idempotencyKey: key() })).rejects.toBeInstanceOf(TransientRemoteError);
    server.injectFault({ kind: '429', retryAfterSeconds: 2, path: '/contacts/batch' });
    await expect(client().batchUpsert(one, { idempotencyKey: key() })).rejects.toMatchObject({ retryAfterMs: 2000 });
    const tooMany = Array.from({ length: 101 }, (_, index) => ({ key: `k${index}`, fields: alice }));
    await expect(client().batchUpsert(tooMany, { idempotencyKey: key() })).rejects.toMatchObject({
      constructor: PermanentRemoteError,
      status: 400,
      remoteMessage: 'batch has 101 items; the limit is 100',
    });
    expect(server.contacts()).toHaveLength(0);
  });

  it('should refuse an answer whose results are not those of the items sent', async () => {
    const liar = createServer((_req, res) => {
      const body = JSON.stringify({
        results: [{ key: 'b', status: 201, contact: { ...alice, id: 'c_1', version: 1, phone: null, company: null } }],
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    });
    await new Promise<void>((resolve) => liar.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = liar.address() as AddressInfo;
      const lying = new DemoCrmClient({ baseUrl: `http://127.0.0.1:${port}`, token: TOKEN });
      await expect(lying.batchUpsert([{ key: 'a', fields: alice }], { idempotencyKey: key() })).rejects.toMatchObject({
        constructor: UnexpectedRemoteResponseError,
        message: 'demo crm answered POST /contacts/batch with results for other items than sent',
      });
    } finally {
      liar.closeAllConnections();
      await new Promise((resolve) => liar.close(resolve));
    }
  });
});
