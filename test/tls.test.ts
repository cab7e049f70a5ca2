/**
 * Secured Temporal connections, for real: the dev server behind a TLS proxy (server certificate
 * only) and behind a mutual-TLS proxy (client certificate required), reached with settings from a
 * tidesync config file or from TEMPORAL_TLS_* variables, and the ways such a connection fails.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import type { Change } from '../src/connectors/connector';
import { ConfigurationError } from '../src/errors';
import { startTidesync } from '../src/start';
import {
  connectClientConnection,
  connectWorkerConnection,
  type ResolvedTemporal,
  resolveTemporalSettings,
  type TemporalSettings,
} from '../src/temporal/connection';
import { createTestDatabase, uniqueName } from './helpers';
import { startTlsProxy, type TlsProxy } from './support/tls-proxy';

const JOB = `
jobs:
  tls_note_export:
    title: Export notes (TLS test)
    type: export
    steps:
      push_note:
        title: Push note
        reader: entity.by_id
        processor: tls.note_processor
        writer: tls.note_writer
        parameters: { table: tls_notes, identifier: id }
`;

async function resolved(settings: TemporalSettings | undefined, env: NodeJS.ProcessEnv): Promise<ResolvedTemporal> {
  const result = await resolveTemporalSettings(settings, env);
  if (!result) throw new Error('expected an address to be resolved');
  return result;
}

/** Resolves when `promise` rejects; fails the test when it resolves. Returns the error and the time taken. */
async function failure(promise: Promise<{ close(): Promise<void> }>): Promise<{ error: Error; ms: number }> {
  const started = Date.now();
  try {
    const connection = await promise;
    await connection.close();
  } catch (error) {
    return { error: error as Error, ms: Date.now() - started };
  }
  throw new Error('expected the connection to fail');
}

describe('exports over TLS and mutual TLS', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let jobDir: string;
  let tlsProxy: TlsProxy;
  let mtlsProxy: TlsProxy;

  beforeAll(async () => {
    database = await createTestDatabase();
    await sql`create table tls_notes (id integer primary key, body text not null)`.execute(database.app);
    await sql`insert into tls_notes (id, body) values (1, 'sent over tls')`.execute(database.app);
    jobDir = await mkdtemp(path.join(tmpdir(), 'tidesync-tls-jobs-'));
    await writeFile(path.join(jobDir, 'tls.yaml'), JOB);
    [tlsProxy, mtlsProxy] = await Promise.all([startTlsProxy(), startTlsProxy({ mutual: true })]);
  });
  afterAll(async () => {
    await Promise.all([tlsProxy?.close(), mtlsProxy?.close()]);
    await rm(jobDir, { recursive: true, force: true });
    await database?.drop();
  });

  function settingsFor(proxy: TlsProxy, mutual: boolean): TemporalSettings {
    return {
      address: proxy.address,
      // The certificate names localhost; the address is an IP: serverName bridges the two.
      tls: {
        serverName: 'localhost',
        serverCaCertFile: proxy.caFile,
        ...(mutual ? { clientCertFile: proxy.clientCertFile, clientKeyFile: proxy.clientKeyFile } : {}),
      },
    };
  }

  function envFor(proxy: TlsProxy, mutual: boolean): NodeJS.ProcessEnv {
    return {
      TEMPORAL_ADDRESS: proxy.address,
      TEMPORAL_TLS: 'true',
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: proxy.caFile,
      ...(mutual ? { TEMPORAL_TLS_CLIENT_CERT_PATH: proxy.clientCertFile, TEMPORAL_TLS_CLIENT_KEY_PATH: proxy.clientKeyFile } : {}),
    };
  }

  it.each([
    ['TLS', 'config file settings', false, 'settings'],
    ['TLS', 'TEMPORAL_TLS_* variables', false, 'env'],
    ['mTLS', 'config file settings', true, 'settings'],
    ['mTLS', 'TEMPORAL_TLS_* variables', true, 'env'],
  ] as const)('should export a row through the %s proxy with %s', async (_kind, _source, mutual, from) => {
    const proxy = mutual ? mtlsProxy : tlsProxy;
    // An empty env for the settings case: the test run's own TEMPORAL_ADDRESS must not win.
    const temporal =
      from === 'settings' ? await resolved(settingsFor(proxy, mutual), {}) : await resolved(undefined, envFor(proxy, mutual));
    expect(temporal).toMatchObject({ address: proxy.address, namespace: 'default', secure: true });

    // Stands in for the remote system.
    const written: Change[] = [];
    // The one wiring (as `tidesync worker` runs it): worker and client both connect through the proxy.
    const engine = await startTidesync(
      {
        connectors: [{ integrationType: 'tls', name: 'note', getExportJobName: () => 'tls_note_export' }],
        processors: { 'tls.note_processor': { process: (entity) => ({ kind: 'changeset', data: { body: entity['body'] } }) } },
        writers: {
          'tls.note_writer': {
            write: async (change) => {
              written.push(change);
              return { remoteId: `note-${change.key}`, remoteVersion: null };
            },
          },
        },
        jobs: [jobDir],
      },
      {
        servers: { databaseUrl: database.url, temporal: temporal as NonNullable<typeof temporal>, uiUrl: null },
        worker: true,
        taskQueue: uniqueName('tls'),
        ...(process.env['TIDESYNC_WORKFLOW_BUNDLE'] ? { workflowBundlePath: process.env['TIDESYNC_WORKFLOW_BUNDLE'] } : {}),
      },
    );
    const integration = await engine.client.upsertIntegration({ type: 'tls', name: uniqueName('tls') });
    try {
      const scheduled = await engine.client.scheduleExport({ integration: integration.name, connector: 'note', id: 1 });
      if (!scheduled.scheduled) throw new Error(`export refused: ${scheduled.reason}`);
      const outcome = await engine.client.waitForExport(scheduled);
      expect(outcome).toMatchObject({ ok: true, status: 'completed', counters: { written: 1 } });
      expect(written).toEqual([expect.objectContaining({ key: '1', operation: 'create', data: { body: 'sent over tls' } })]);
    } finally {
      await engine.close();
    }
  });

  describe('failures', () => {
    // Each case must fail well inside this bound, never wait for the connect timeout.
    const QUICK_MS = 3_000;

    it('should refuse a server whose certificate another CA signed', async () => {
      const temporal = await resolved(
        { address: tlsProxy.address, tls: { serverName: 'localhost', serverCaCertFile: tlsProxy.wrongCaFile } },
        {},
      );
      for (const connect of [connectWorkerConnection, connectClientConnection]) {
        const { error, ms } = await failure(connect(temporal));
        expect(error).toBeInstanceOf(ConfigurationError);
        expect(error.message).toContain(
          `cannot connect to temporal at '${tlsProxy.address}' (TLS): the server's certificate is not signed by the configured CA`,
        );
        expect(ms).toBeLessThan(QUICK_MS);
      }
    });

    it('should say that the server requires a client certificate', async () => {
      const temporal = await resolved(
        { address: mtlsProxy.address, tls: { serverName: 'localhost', serverCaCertFile: mtlsProxy.caFile } },
        {},
      );
      for (const connect of [connectWorkerConnection, connectClientConnection]) {
        const { error, ms } = await failure(connect(temporal));
        // The server's alert, or (TLS 1.3, a loaded machine) only the connection closing after the handshake.
        expect(error.message).toContain(`cannot connect to temporal at '${mtlsProxy.address}' (TLS): the server`);
        expect(error.message).toMatch(
          /\(TLS\): the server (requires|closed the connection: it may require) a client certificate \(mutual TLS\)/,
        );
        expect(ms).toBeLessThan(QUICK_MS);
      }
    });

    it('should fail at once when nothing listens at the address', async () => {
      const closed = net.createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const address = `127.0.0.1:${(closed.address() as net.AddressInfo).port}`;
      await new Promise((resolve) => closed.close(resolve));
      const temporal = await resolved(
        {
          address,
          tls: { serverCaCertFile: tlsProxy.caFile, clientCertFile: tlsProxy.clientCertFile, clientKeyFile: tlsProxy.clientKeyFile },
        },
        {},
      );
      for (const connect of [connectWorkerConnection, connectClientConnection]) {
        const { error, ms } = await failure(connect(temporal));
        expect(error.message).toContain(`cannot connect to temporal at '${address}' (mTLS): nothing listens at that address`);
        expect(ms).toBeLessThan(QUICK_MS);
      }
    });

    it('should give up on a server that accepts and never answers, after the timeout', async () => {
      const held = new Set<net.Socket>();
      const silent = net.createServer((socket) => held.add(socket));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const address = `127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
      try {
        const temporal = await resolved({ address, tls: { serverCaCertFile: tlsProxy.caFile } }, { TEMPORAL_API_KEY: 'k' });
        for (const connect of [connectWorkerConnection, connectClientConnection]) {
          const { error, ms } = await failure(connect(temporal, { timeoutMs: 1_500 }));
          expect(error.message).toBe(`cannot connect to temporal at '${address}' (TLS with API key): no answer within 1500 ms`);
          expect(ms).toBeGreaterThanOrEqual(1_400);
          expect(ms).toBeLessThan(QUICK_MS);
        }
      } finally {
        // Ends the handshakes the native side still waits on, so its late connect settles.
        for (const socket of held) socket.destroy();
        await new Promise((resolve) => silent.close(resolve));
      }
    });
  });
});
