import { randomUUID } from 'node:crypto';
import { appendFile, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DemoCrmClient } from './crm-client';
import { crmFileSizes } from './crm-journal';
import { DemoCrmServer } from './crm-server';

const TOKEN = 'test-token';
const alice = { firstName: 'Alice', lastName: 'Liddell', email: 'alice@example.com' };
const bob = { firstName: 'Bob', email: 'bob@example.com' };
const key = (): string => randomUUID();

let directory: string;
let dataFile: string;
/** Servers a test started and did not stop, stopped after it. */
const running: DemoCrmServer[] = [];

async function start(file = dataFile): Promise<{ server: DemoCrmServer; client: DemoCrmClient }> {
  const server = await DemoCrmServer.start({ token: TOKEN, dataFile: file });
  running.push(server);
  return { server, client: new DemoCrmClient({ baseUrl: server.url, token: TOKEN }) };
}

/**
 * What a crash leaves on disk: the files as they are while the server runs (every append has
 * returned, nothing was compacted on stop), copied to a data file of their own.
 */
async function crashImage(name: string): Promise<string> {
  const copy = join(directory, name);
  const sizes = crmFileSizes(dataFile);
  if (sizes.snapshotBytes > 0) await copyFile(dataFile, copy);
  await copyFile(`${dataFile}.journal`, `${copy}.journal`);
  return copy;
}

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'tidesync-crm-'));
  dataFile = join(directory, 'crm.json');
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.stop()));
  await rm(directory, { recursive: true, force: true });
});

describe('demo crm data file', () => {
  it('should keep contacts, ids and idempotency keys across a restart', async () => {
    const idempotencyKey = key();
    const first = await start();
    const created = await first.client.create(alice, { idempotencyKey });
    await first.server.stop();

    const second = await start();
    expect(await second.client.get(created.id)).toEqual(created);
    expect(await second.client.create(alice, { idempotencyKey })).toEqual(created);
    const next = await second.client.create(bob, { idempotencyKey: key() });
    expect(next.id).not.toBe(created.id);
    expect(second.server.contacts()).toHaveLength(2);
  });

  it('should refuse to start on a malformed data file, naming the bad field', async () => {
    await writeFile(dataFile, JSON.stringify({ nextId: 2, contacts: [{ id: 'c_1' }], idempotency: {} }));
    await expect(DemoCrmServer.start({ token: TOKEN, dataFile })).rejects.toThrow(/is malformed at contacts\.0\.version/);
  });

  it('should load a data file written before the journal, idempotency keys included', async () => {
    const contact = { id: 'c_1', version: 2, ...alice, phone: null, company: null };
    const response = { status: 201, body: { ...contact, version: 1 }, etag: '"1"' };
    const old = { nextId: 2, contacts: [contact], idempotency: { k1: { method: 'POST', path: '/contacts', response } } };
    await writeFile(dataFile, JSON.stringify(old, null, 2));
    const { server, client } = await start();
    expect(server.contacts()).toEqual([contact]);
    expect(await client.create(alice, { idempotencyKey: 'k1' })).toEqual(response.body);
    expect((await client.create(bob, { idempotencyKey: key() })).id).toBe('c_2');
  });
});

describe('demo crm journal', () => {
  it('should append one line per applied request and replay them after a crash', async () => {
    const { server, client } = await start();
    const idempotencyKey = key();
    const created = await client.create(alice, { idempotencyKey });
    await client.patch(created.id, { company: 'Wonderland' }, { idempotencyKey: key() });
    const gone = await client.create(bob, { idempotencyKey: key() });
    await client.delete(gone.id, { idempotencyKey: key() });
    server.editAsRemoteUser(created.id, { phone: '555' });
    await expect(client.get('c_999')).resolves.toBeNull(); // reads and refusals are not journalled

    const lines = (await readFile(`${dataFile}.journal`, 'utf8')).trimEnd().split('\n');
    expect(lines).toHaveLength(5);
    expect(crmFileSizes(dataFile).snapshotBytes).toBe(0);

    const recovered = await start(await crashImage('crashed.json'));
    expect(recovered.server.contacts()).toEqual(server.contacts());
    expect(await recovered.client.create(alice, { idempotencyKey })).toEqual(created);
    expect(recovered.server.stats().writes).toBe(0);
    expect((await recovered.client.create(bob, { idempotencyKey: key() })).id).toBe('c_3');
  });

  it('should journal a whole batch and its idempotency key as one line, replayed together', async () => {
    const { server } = await start();
    const idempotencyKey = key();
    const body = JSON.stringify({
      items: [
        { key: 'a', fields: alice },
        { key: 'b', fields: bob },
      ],
    });
    const post = (url: string) =>
      fetch(`${url}/contacts/batch`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'idempotency-key': idempotencyKey },
        body,
      });
    const first = (await (await post(server.url)).json()) as unknown;
    expect((await readFile(`${dataFile}.journal`, 'utf8')).trimEnd().split('\n')).toHaveLength(1);

    const recovered = await start(await crashImage('batch.json'));
    expect(recovered.server.contacts()).toEqual(server.contacts());
    const replayed = await post(recovered.server.url);
    expect(replayed.headers.get('idempotent-replayed')).toBe('true');
    expect(await replayed.json()).toEqual(first);
    expect(recovered.server.contacts()).toHaveLength(2);
  });

  it('should drop a last line torn by a crash mid-append and keep every earlier record', async () => {
    const { server, client } = await start();
    for (let index = 0; index < 5; index += 1) {
      await client.create({ ...alice, email: `alice${index}@example.com` }, { idempotencyKey: key() });
    }
    const before = server.contacts();
    const crashed = await crashImage('torn.json');
    // Half of the line of a sixth create: the write was cut short, the request never answered.
    const torn = JSON.stringify({ seq: 6, ops: [{ put: { id: 'c_6', version: 1, ...bob, lastName: '', phone: null } }] });
    await appendFile(`${crashed}.journal`, torn.slice(0, 40));

    const recovered = await start(crashed);
    expect(recovered.server.contacts()).toEqual(before);
    // The torn bytes are cut off, so the next line starts on a line of its own and survives too.
    const sixth = await recovered.client.create(bob, { idempotencyKey: key() });
    expect(sixth.id).toBe('c_6');
    const image = join(directory, 'torn.json');
    const lines = (await readFile(`${image}.journal`, 'utf8')).trimEnd().split('\n');
    expect(lines.map((line) => (JSON.parse(line) as { seq: number }).seq)).toEqual([1, 2, 3, 4, 5, 6]);
    await recovered.server.stop();
    const again = await start(crashed);
    expect(again.server.contacts()).toEqual([...before, sixth]);
  });

  it('should refuse a journal with a corrupt line before its end, naming the file and line', async () => {
    const { client } = await start();
    await client.create(alice, { idempotencyKey: key() });
    const crashed = await crashImage('corrupt.json');
    const journal = await readFile(`${crashed}.journal`, 'utf8');
    await writeFile(`${crashed}.journal`, `{"seq":1,"ops":[{"put":1}]}\n${journal}`);
    await expect(DemoCrmServer.start({ token: TOKEN, dataFile: crashed })).rejects.toThrow(
      `demo crm journal ${crashed}.journal line 1 is malformed at ops.0`,
    );
  });

  it('should compact into the snapshot once the journal outgrows it, and keep the same data', async () => {
    const { server, client } = await start();
    const ids: string[] = [];
    for (let index = 0; index < 20; index += 1) {
      ids.push((await client.create({ ...alice, email: `alice${index}@example.com` }, { idempotencyKey: key() })).id);
    }
    // Rewriting the same 20 contacts grows the journal, never the data: about 1.2 kB a line.
    let edits = 0;
    let written = 0;
    while (server.storage()?.compactions === 0 && edits < 5_000) {
      const journalBefore = crmFileSizes(dataFile).journalBytes;
      server.editAsRemoteUser(ids[edits % ids.length] as string, { company: `${edits} ${'x'.repeat(1_000)}` });
      written = journalBefore;
      edits += 1;
    }
    const sizes = crmFileSizes(dataFile);
    expect(server.storage()).toEqual({ ...sizes, compactions: 1 });
    expect(written).toBeGreaterThan(1000 * 1024);
    expect(sizes.journalBytes).toBe(0);
    expect(sizes.snapshotBytes).toBeLessThan(written / 10);

    const contacts = server.contacts();
    await server.stop();
    const restarted = await start();
    expect(restarted.server.contacts()).toEqual(contacts);
  });

  it('should find contacts by external key again after a crash replay and after compaction', async () => {
    const { server, client } = await start();
    const first = await client.upsertByKey('ext-1', alice, { idempotencyKey: key() });
    await client.batchUpsert(
      [
        { key: 'b', externalKey: 'ext-2', fields: bob },
        { key: 'c', externalKey: 'ext-3', fields: bob },
      ],
      { idempotencyKey: key() },
    );
    await client.deleteByKey('ext-3', { idempotencyKey: key() });
    await client.create(bob, { idempotencyKey: key() });

    /** Checks a reopened CRM's index: ext-1 and ext-2 are found and replaced, ext-3 is free. */
    const expectIndex = async (reopened: { server: DemoCrmServer; client: DemoCrmClient }) => {
      expect(reopened.server.contacts()).toEqual(server.contacts());
      expect(reopened.server.contactByKey('ext-2')).toMatchObject({ ...bob, externalKey: 'ext-2' });
      const replaced = await reopened.client.upsertByKey('ext-1', bob, { idempotencyKey: key() });
      expect(replaced).toMatchObject({ id: first.id, version: 2 });
      await reopened.client.deleteByKey('ext-2', { idempotencyKey: key() });
      expect((await reopened.client.upsertByKey('ext-3', alice, { idempotencyKey: key() })).version).toBe(1);
      expect(reopened.server.contacts()).toHaveLength(3);
    };
    await expectIndex(await start(await crashImage('keys.json')));

    await server.stop(); // compacts: the keys now come from the snapshot alone
    expect(crmFileSizes(dataFile).journalBytes).toBe(0);
    await expectIndex(await start());
  });

  it('should replay a wipe as forgetting every external key', async () => {
    const { server, client } = await start();
    await client.upsertByKey('ext-1', alice, { idempotencyKey: key() });
    server.wipe();
    const recovered = await start(await crashImage('wiped.json'));
    expect(recovered.server.contactByKey('ext-1')).toBeUndefined();
    expect(await recovered.client.upsertByKey('ext-1', bob, { idempotencyKey: key() })).toMatchObject({ id: 'c_2', version: 1 });
  });

  it('should start from an empty snapshot and journal on a wipe, ids still counting up', async () => {
    const { server, client } = await start();
    for (let index = 0; index < 3; index += 1) {
      await client.create({ ...alice, email: `alice${index}@example.com`, company: 'x'.repeat(1_000) }, { idempotencyKey: key() });
    }
    expect(crmFileSizes(dataFile).journalBytes).toBeGreaterThan(3_000);
    server.wipe();
    // Compacted at once: the lines written before the wipe are gone, the snapshot holds no contact.
    const sizes = crmFileSizes(dataFile);
    expect(server.storage()).toEqual({ ...sizes, compactions: 1 });
    expect(sizes.journalBytes).toBe(0);
    expect(sizes.snapshotBytes).toBeLessThan(200);
    const recovered = await start(await crashImage('wiped-fresh.json'));
    expect(recovered.server.contacts()).toEqual([]);
    expect((await recovered.client.create(bob, { idempotencyKey: key() })).id).toBe('c_4');
  });

  it('should fold the journal into the snapshot on a clean stop', async () => {
    const { server, client } = await start();
    await client.create(alice, { idempotencyKey: key() });
    expect(crmFileSizes(dataFile).journalBytes).toBeGreaterThan(0);
    const contacts = server.contacts();
    await server.stop();
    expect(crmFileSizes(dataFile).journalBytes).toBe(0);
    const snapshot = JSON.parse(await readFile(dataFile, 'utf8')) as { seq: number; contacts: unknown[] };
    expect(snapshot).toMatchObject({ seq: 1, contacts });
  });
});
