import { randomUUID } from 'node:crypto';
import { PermanentRemoteError } from 'tidesync';
import { DemoCrmClient } from './crm-client';
import { type DemoCrmServer } from './crm-server';
import { CRM_TEST_TOKEN, crmRequest, useCrmServer } from './crm-test-kit';

const TOKEN = CRM_TEST_TOKEN;
const alice = { firstName: 'Alice', lastName: 'Liddell', email: 'alice@example.com' };
const bob = { firstName: 'Bob', email: 'bob@example.com' };
const carol = { firstName: 'Carol', email: 'carol@example.com' };
const key = (): string => randomUUID();

let server: DemoCrmServer;

/** An HTTP call with the token; `body` is sent as JSON. */
const call = (method: string, path: string, body: unknown, idempotencyKey?: string) =>
  crmRequest(server.url, method, path, { body, ...(idempotencyKey === undefined ? {} : { idempotencyKey }) });

const postBatch = (items: unknown[], idempotencyKey?: string) => call('POST', '/contacts/batch', { items }, idempotencyKey);
const put = (externalKey: string, fields: unknown, idempotencyKey?: string) =>
  call('PUT', `/contacts/by-key/${encodeURIComponent(externalKey)}`, fields, idempotencyKey);

useCrmServer((started) => {
  server = started;
});

describe('demo crm batch upsert by external key', () => {
  it('should create the items whose key is new and replace those whose key exists, in input order', async () => {
    const existing = (await put('ext-1', { ...alice, company: 'Wonderland' })).json;
    const answer = await postBatch([
      { key: 'a', externalKey: 'ext-1', fields: alice },
      { key: 'b', externalKey: 'ext-2', fields: bob },
      { key: 'c', fields: carol },
    ]);
    expect(answer.status).toBe(200);
    expect(answer.json.results).toEqual([
      { key: 'a', status: 200, contact: { ...existing, version: 2, company: null } },
      {
        key: 'b',
        status: 201,
        contact: { id: expect.any(String), version: 1, ...bob, lastName: '', phone: null, company: null, externalKey: 'ext-2' },
      },
      { key: 'c', status: 201, contact: expect.not.objectContaining({ externalKey: expect.anything() }) },
    ]);
    expect(server.contacts()).toHaveLength(3);
    expect(server.contactByKey('ext-2')).toEqual(answer.json.results[1].contact);
  });

  it('should fail only the second item of a key repeated in one batch, or of a contact named by id and by key', async () => {
    const carried = (await put('ext-3', carol)).json;
    const answer = await postBatch([
      { key: 'first', externalKey: 'ext-1', fields: alice },
      { key: 'other', externalKey: 'ext-2', fields: bob },
      { key: 'again', externalKey: 'ext-1', fields: bob },
      { key: 'byId', id: carried.id, fields: { company: 'Acme' }, partial: true },
      { key: 'byKey', externalKey: 'ext-3', fields: carol },
    ]);
    expect(answer.json.results.map((result: { status: number }) => result.status)).toEqual([201, 201, 409, 200, 409]);
    expect(answer.json.results[2].error).toEqual({
      code: 'duplicate_external_key',
      message: 'external key "ext-1" of items[2] is already upserted by items[0]',
    });
    expect(answer.json.results[4].error).toEqual({
      code: 'duplicate_id',
      message: `contact ${carried.id} of items[4] is already changed by items[3]`,
    });
    expect(server.contactByKey('ext-1')).toMatchObject({ ...alice, version: 1 });
    expect(server.contactByKey('ext-3')).toMatchObject({ version: 2, company: 'Acme' });
    expect(server.contacts()).toHaveLength(3);
  });

  it('should refuse externalKey beside id, ifMatch or partial as a 400 naming the item and field', async () => {
    const withId = await postBatch([
      { key: 'a', fields: alice },
      { key: 'b', id: 'c_1', externalKey: 'ext-1', fields: bob },
    ]);
    expect(withId.status).toBe(400);
    expect(withId.json.error).toEqual({
      code: 'invalid_batch',
      message: 'invalid batch items[1].externalKey: externalKey and id exclude each other: an item names its contact by one or the other',
      field: 'items[1].externalKey',
    });
    const conditional = await postBatch([{ key: 'a', externalKey: 'ext-1', fields: alice, ifMatch: 1 }]);
    expect(conditional.json.error).toMatchObject({ code: 'invalid_batch', field: 'items[0].ifMatch' });
    const partial = await postBatch([{ key: 'a', externalKey: 'ext-1', fields: alice, partial: true }]);
    expect(partial.json.error).toMatchObject({ code: 'invalid_batch', field: 'items[0].partial' });
    expect((await postBatch([{ key: 'a', externalKey: '', fields: alice }])).json.error.field).toBe('items[0].externalKey');
    expect(server.contacts()).toEqual([]);
  });

  it('should answer an item by key from its idempotency key, shared with PUT /contacts/by-key', async () => {
    const itemKey = key();
    const item = { key: 'a', externalKey: 'ext-1', fields: alice, idempotencyKey: itemKey };
    const first = await postBatch([item]);
    const again = await postBatch([
      { key: 'b', externalKey: 'ext-2', fields: bob },
      { ...item, fields: carol },
    ]);
    expect(again.json.results[1]).toEqual({ ...first.json.results[0], key: 'a' });
    const single = await put('ext-1', carol, itemKey);
    expect(single.status).toBe(201);
    expect(single.headers.get('idempotent-replayed')).toBe('true');
    expect(single.json).toEqual(first.json.results[0].contact);

    // And the other way round: a single upsert's key answers a later item for the same key.
    const singleKey = key();
    const upserted = (await put('ext-3', carol, singleKey)).json;
    const replayed = await postBatch([{ key: 'c', externalKey: 'ext-3', fields: bob, idempotencyKey: singleKey }]);
    expect(replayed.json.results).toEqual([{ key: 'c', status: 201, contact: upserted }]);
    const misused = await postBatch([{ key: 'd', externalKey: 'ext-4', fields: bob, idempotencyKey: singleKey }]);
    expect(misused.json.results[0]).toMatchObject({ status: 422, error: { code: 'idempotency_key_reused' } });
    expect(server.contactByKey('ext-1')).toMatchObject({ ...alice, version: 1 });
    expect(server.stats()).toMatchObject({ writes: 3, replays: 3 });
  });

  it('should let an item-422 fault fail an item by key, by email, and apply the others', async () => {
    server.injectFault({ kind: 'item-422', match: 'bob@example.com', message: 'email domain is blocked' });
    const answer = await postBatch([
      { key: 'a', externalKey: 'ext-1', fields: alice },
      { key: 'b', externalKey: 'ext-2', fields: bob },
    ]);
    expect(answer.json.results.map((result: { status: number }) => result.status)).toEqual([201, 422]);
    expect(answer.json.results[1].error).toEqual({ code: 'validation_failed', message: 'email domain is blocked' });
    expect(server.contactByKey('ext-2')).toBeUndefined();
    expect(server.stats()).toMatchObject({ faultsServed: 1, writes: 1 });
  });

  it('should send items by key through the client and map a repeated key to a PermanentRemoteError', async () => {
    const client = new DemoCrmClient({ baseUrl: server.url, token: TOKEN, timeoutMs: 2000 });
    await client.upsertByKey('ext-1', alice, { idempotencyKey: key() });
    const results = await client.batchUpsert(
      [
        { key: 'a', externalKey: 'ext-1', fields: { ...alice, phone: '555' }, idempotencyKey: key() },
        { key: 'b', externalKey: 'ext-2', fields: bob },
        { key: 'c', externalKey: 'ext-2', fields: carol },
      ],
      { idempotencyKey: key() },
    );
    expect(results.map((result) => [result.key, result.ok, result.status])).toEqual([
      ['a', true, 200],
      ['b', true, 201],
      ['c', false, 409],
    ]);
    const [a, b, c] = results.map((result) => (result.ok ? result.contact : result.error));
    expect(a).toMatchObject({ version: 2, phone: '555', externalKey: 'ext-1' });
    expect(b).toMatchObject({ version: 1, ...bob, externalKey: 'ext-2' });
    expect(c).toBeInstanceOf(PermanentRemoteError);
    expect(c).toMatchObject({ status: 409, remoteMessage: 'external key "ext-2" of items[2] is already upserted by items[1]' });
  });
});
