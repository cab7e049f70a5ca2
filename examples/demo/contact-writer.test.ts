import { randomUUID } from 'node:crypto';
import {
  type Change,
  type WriteContext,
  PermanentRemoteError,
  RemoteNotFoundError,
  RemoteVersionConflictError,
  TransientRemoteError,
} from 'tidesync';
import { DEFAULT_BREAKER_THRESHOLD, DEFAULT_PROBE_INTERVAL_MS, DEFAULT_RETRY_WINDOW_MS } from 'tidesync';
import { DemoContactWriter } from './contact-writer';
import type { DemoCrmServer } from './remote/crm-server';
import { CRM_TEST_TOKEN, useCrmServer } from './remote/crm-test-kit';

const TOKEN = CRM_TEST_TOKEN;
const writer = new DemoContactWriter();
let server: DemoCrmServer;

function context(): WriteContext {
  const integration = {
    id: 1,
    type: 'demo',
    name: 'demo',
    enabled: true,
    twoWaySync: false,
    syncPriority: 'local' as const,
    transport: { baseUrl: server.url },
    secretRef: 'env:DEMO_CRM_TOKEN',
    retryWindowMs: DEFAULT_RETRY_WINDOW_MS,
    probeIntervalMs: DEFAULT_PROBE_INTERVAL_MS,
    breakerThreshold: DEFAULT_BREAKER_THRESHOLD,
    rateLimit: { requestsPerSecond: null, maxConcurrent: null },
  };
  return { integration, parameters: {}, secret: TOKEN, signal: new AbortController().signal };
}

/** A change as the engine would build it: a create without `remoteId`, else an update. */
function change(key: string, data: Record<string, unknown>, update: Partial<Change> = {}): Change {
  const operation = update.remoteId ? 'update' : 'create';
  return { key, operation, data, remoteId: null, idempotencyKey: randomUUID(), partial: false, expectedVersion: null, ...update };
}

const person = (name: string) => ({ firstName: name, lastName: 'Liddell', email: `${name.toLowerCase()}@example.com` });

useCrmServer((started) => {
  server = started;
});

describe('demo contact writer writeBatch', () => {
  it('should write creates and updates in one request and answer each change in order', async () => {
    const seeded = [change('1', person('Alice')), change('2', person('Bob')), change('5', person('Frank'))];
    const [alice, bob, frank] = await writer.writeBatch(seeded, context());
    if (!alice?.ok || !bob?.ok || !frank?.ok) throw new Error('expected the creates to succeed');
    server.injectFault({ kind: 'item-422', match: 'carol@example.com', message: 'email domain is blocked' });

    const results = await writer.writeBatch(
      [
        change('1', { ...person('Alice'), company: 'Wonderland' }, { remoteId: alice.remoteId, expectedVersion: '1' }),
        change('2', { phone: '555' }, { remoteId: bob.remoteId, partial: true }),
        change('3', person('Carol')),
        change('4', person('Dan'), { remoteId: 'c_999' }),
        change('5', person('Frank'), { remoteId: frank.remoteId, expectedVersion: '7' }),
      ],
      context(),
    );
    expect(results).toEqual([
      { key: '1', ok: true, remoteId: alice.remoteId, remoteVersion: '2' },
      { key: '2', ok: true, remoteId: bob.remoteId, remoteVersion: '2' },
      { key: '3', ok: false, error: expect.any(PermanentRemoteError) },
      { key: '4', ok: false, error: expect.any(RemoteNotFoundError) },
      { key: '5', ok: false, error: expect.any(RemoteVersionConflictError) },
    ]);
    expect(results[2]).toMatchObject({ error: { status: 422, remoteMessage: 'email domain is blocked' } });
    expect(server.contacts()).toEqual([
      expect.objectContaining({ firstName: 'Alice', company: 'Wonderland' }),
      expect.objectContaining({ firstName: 'Bob', lastName: 'Liddell', phone: '555' }),
      expect.objectContaining({ firstName: 'Frank', version: 1 }),
    ]);
    expect(server.stats().byMethod).toEqual({ POST: 2 });
  });

  it('should replay a retried batch, and not create again a change retried in another batch', async () => {
    const changes = [change('1', person('Alice')), change('2', person('Bob'))];
    const first = await writer.writeBatch(changes, context());
    expect(await writer.writeBatch(changes, context())).toEqual(first);
    expect(server.stats()).toMatchObject({ writes: 2, replays: 1 });

    const regrouped = await writer.writeBatch([change('3', person('Carol')), changes[1] as Change], context());
    expect(regrouped[1]).toEqual(first[1]);
    expect(server.contacts().map((contact) => contact.firstName)).toEqual(['Alice', 'Bob', 'Carol']);
  });

  it('should split more changes than maxBatchSize into requests of at most that many', async () => {
    const changes = Array.from({ length: 250 }, (_, index) => change(`k${index}`, person(`P${index}`)));
    const results = await writer.writeBatch(changes, context());
    expect(results.map((result) => result.key)).toEqual(changes.map((c) => c.key));
    expect(results.every((result) => result.ok)).toBe(true);
    expect(server.stats()).toMatchObject({ requests: 3, writes: 250 });
    await expect(writer.writeBatch([], context())).resolves.toEqual([]);
    expect(server.stats().requests).toBe(3);
  });

  it('should throw a failure of the whole request, and refuse a delete before sending anything', async () => {
    server.injectFault({ kind: '5xx', status: 503, path: '/contacts/batch' });
    await expect(writer.writeBatch([change('1', person('Alice'))], context())).rejects.toBeInstanceOf(TransientRemoteError);
    const deletion = change('2', {}, { operation: 'delete', remoteId: 'c_1' });
    await expect(writer.writeBatch([change('1', person('Alice')), deletion], context())).rejects.toThrow(
      'writeBatch takes creates and updates; change 2 is a delete (use delete())',
    );
    expect(server.stats()).toMatchObject({ requests: 1, writes: 0 });
  });
});
