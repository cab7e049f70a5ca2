/**
 * With the codec on, what tidesync writes into Temporal's history is unreadable to anyone reading
 * the server's store: exports of seeded demo contacts run on real servers, and their RAW histories
 * (fetched without the codec) hold no name, email, phone, company or CRM token, not even inside
 * base64 payload bytes. The codec server makes them readable again over HTTP, also for the
 * Temporal CLI; keys rotate; failures are encrypted too; and the size cost is measured.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, bundleWorkflowCode } from '@temporalio/worker';
import { sql } from 'kysely';
import { demoDeclarations } from '../examples/demo';
import { type Demo, DEMO_TOKEN_ENV, setupDemo } from '../examples/demo/demo-setup';
import { seedContact } from '../examples/demo/local-contacts';
import { type CodecServer, startCodecServer } from '../src/codec/codec-server';
import { CODEC_FAILURE_CONVERTER_PATH, codecDataConverter, createCodec } from '../src/codec/data-converter';
import type { CodecSettings } from '../src/codec/settings';
import { findTemporalCli } from '../src/stack/temporal-cli';
import { createTestDatabase, startTestEngine, type TestEngine, uniqueName } from './helpers';
import { type RawHistory, rawHistory, scan } from './support/raw-history';

const CONTACTS = 8;
const NEW_PHONE = '+44 20 7946 0000';
const K1_ENV = 'TIDESYNC_TEST_CODEC_K1';
const K2_ENV = 'TIDESYNC_TEST_CODEC_K2';
const K1 = randomBytes(32).toString('base64');
const K2 = randomBytes(32).toString('hex');
const UNDER_K1: CodecSettings = { keys: [{ id: 'k1', ref: `env:${K1_ENV}` }] };
// Rotated: k2 encrypts from now on, k1 still decrypts what it wrote.
const UNDER_K2: CodecSettings = {
  keys: [
    { id: 'k2', ref: `env:${K2_ENV}` },
    { id: 'k1', ref: `env:${K1_ENV}` },
  ],
};
const TOKEN = randomBytes(12).toString('hex');

/**
 * The personal data of the i-th seeded contact. A first name is looked for as the JSON string the
 * payload converter writes (`"Ada"`): three letters alone turn up by chance in kilobytes of
 * random ciphertext read as text.
 */
function personalData(index: number): string[] {
  const c = seedContact(index);
  return [`"${c.first_name}"`, c.last_name, c.email, c.phone, c.company].filter((v): v is string => typeof v === 'string');
}

/**
 * Payloads the codec never sees, by design: search attributes (Temporal indexes them; tidesync puts
 * only ids and statuses there) and the SDK core's own record of each local activity (sequence,
 * attempt, activity type, times) in its marker's `data`; the activity's result beside it is encrypted.
 */
function sdkBookkeeping(path: string): boolean {
  // Local activity markers (`data`: sequence, attempt, type) and patch markers (`patch-data`: the patch id).
  return path.includes('searchAttributes') || /markerRecordedEventAttributes\.details\.(data|patch-data)\./.test(path);
}

interface Run {
  readonly workflowId: string;
  readonly runId: string;
}

describe('export histories with the codec on', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let bundleDir: string;
  let bundlePath: string;
  let connection: Connection;
  let raw: Client;
  let plain: TestEngine;
  let engine: TestEngine;
  let demo: Demo;
  let integration: string;
  let server: CodecServer | undefined;
  let plainCreate: RawHistory;
  const runs: Run[] = [];

  async function exportVia(through: TestEngine, id: number): Promise<Run> {
    const scheduled = await through.client.scheduleExport({ integration, connector: 'contact', id });
    if (!scheduled.scheduled) throw new Error(`export of ${id} refused: ${scheduled.reason}`);
    await through.client.waitForExport(scheduled);
    return { workflowId: scheduled.workflowId, runId: scheduled.runId };
  }

  async function decodeOverHttp(url: string, payloads: readonly unknown[], headers: Record<string, string> = {}) {
    return fetch(`${url}/decode`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-namespace': 'default', authorization: `Bearer ${TOKEN}`, ...headers },
      body: JSON.stringify({ payloads }),
    });
  }

  beforeAll(async () => {
    process.env[K1_ENV] = K1;
    process.env[K2_ENV] = K2;
    database = await createTestDatabase();
    // A codec worker needs a workflow bundle with the codec's failure converter in it.
    bundleDir = await mkdtemp(path.join(tmpdir(), 'tidesync-codec-bundle-'));
    const { code } = await bundleWorkflowCode({
      workflowsPath: require.resolve('../src/workflows'),
      failureConverterPath: CODEC_FAILURE_CONVERTER_PATH,
      logger: new DefaultLogger('WARN'),
    });
    bundlePath = path.join(bundleDir, 'workflow-bundle.js');
    await writeFile(bundlePath, code);
    // What anyone with access to the server's store sees: a client without the codec.
    connection = await Connection.connect({ address: process.env['TEMPORAL_ADDRESS'] as string });
    raw = new Client({ connection });

    // The same create pass without the codec, to compare sizes and to prove the scan finds data.
    plain = await startTestEngine(database);
    demo = await setupDemo({ db: database.app, client: plain.client, contacts: CONTACTS, integrationName: uniqueName('plain') });
    integration = demo.integration.name;
    const plainRun = await exportVia(plain, 1);
    plainCreate = await rawHistory(raw, plainRun.workflowId, plainRun.runId);
    await plain.close();

    engine = await startTestEngine(database, { config: { ...demoDeclarations, codec: UNDER_K1 }, workflowBundlePath: bundlePath });
    integration = uniqueName('codec');
    await engine.client.upsertIntegration({
      type: 'demo',
      name: integration,
      transport: { baseUrl: demo.remote.url },
      secretRef: `env:${DEMO_TOKEN_ENV}`,
    });
  });
  afterAll(async () => {
    await server?.close();
    await engine?.close();
    await plain?.close();
    await connection?.close();
    await demo?.remote.stop();
    await database?.drop();
    if (bundleDir) await rm(bundleDir, { recursive: true, force: true });
  });

  it('should keep every seeded name, email, phone, company and the CRM token out of the raw histories', async () => {
    for (let id = 1; id <= CONTACTS; id++) runs.push(await exportVia(engine, id));
    // An update pass too: the writer reads the remote record first, so remote data passes through.
    await sql`update contacts set phone = ${NEW_PHONE} where id = 2`.execute(database.app);
    runs.push(await exportVia(engine, 2));

    const token = process.env[DEMO_TOKEN_ENV] as string;
    const secrets = [token, ...[...Array(CONTACTS).keys()].flatMap(personalData), NEW_PHONE, K1, K2];
    const leaks: string[] = [];
    for (const run of runs) {
      const history = await rawHistory(raw, run.workflowId, run.runId);
      for (const secret of secrets) if (history.haystack.includes(secret)) leaks.push(`${run.workflowId}: ${secret}`);
    }
    expect(leaks).toEqual([]);
    // The same scan does see them where there is no codec.
    expect(personalData(0).filter((secret) => !plainCreate.haystack.includes(secret))).toEqual([]);
  });

  it('should write every payload encrypted under k1, search attributes aside', async () => {
    const history = await rawHistory(raw, runs[0]!.workflowId, runs[0]!.runId);
    const data = history.payloads.filter((p) => !sdkBookkeeping(p.path));
    // The input, the result of each local activity of the pass (begin, read, process, write, write back, finish) and the run's result.
    expect(data.length).toBeGreaterThanOrEqual(8);
    expect(data.filter((p) => p.encoding !== 'binary/encrypted' || p.keyId !== 'k1').map((p) => `${p.path}: ${p.encoding}`)).toEqual([]);
    // Search attributes stay readable (Temporal indexes them): ids and statuses only.
    const attributes = history.payloads.filter((p) => p.path.includes('searchAttributes'));
    expect(attributes.map((p) => p.encoding)).toContain('json/plain');
  });

  it("should make the histories readable again through the codec server's /decode", async () => {
    server = await startCodecServer({ codec: await createCodec(UNDER_K2), port: 0, token: TOKEN });
    const decodedText: string[] = [];
    for (const run of runs) {
      const history = await rawHistory(raw, run.workflowId, run.runId);
      const response = await decodeOverHttp(
        server.url,
        history.payloads.filter((p) => p.encoding === 'binary/encrypted').map((p) => p.json),
      );
      expect(response.status).toBe(200);
      decodedText.push(scan(await response.json()).haystack);
    }
    const decoded = decodedText.join('\n');
    const unreadable = [...[...Array(CONTACTS).keys()].flatMap(personalData), NEW_PHONE].filter((v) => !decoded.includes(v));
    expect(unreadable).toEqual([]);
    // Secrets never enter payloads at all, encrypted or not.
    expect(decoded).not.toContain(process.env[DEMO_TOKEN_ENV]);
  });

  it('should show the decoded history in the temporal CLI given the codec server as --codec-endpoint', async () => {
    const cli = await findTemporalCli();
    if (cli.kind !== 'binary') throw new Error(`the tests need the temporal CLI binary; found ${cli.kind}`);
    const run = runs[0]!;
    const show = (extra: string[]) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
        const args = ['workflow', 'show', '-w', run.workflowId, '-r', run.runId, '--address', process.env['TEMPORAL_ADDRESS'] as string];
        const child = spawn(cli.path, [...args, '--output', 'json', ...extra]);
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      });
    const [without, withCodec] = await Promise.all([show([]), show(['--codec-endpoint', server!.url, '--codec-auth', `Bearer ${TOKEN}`])]);
    expect(withCodec.stderr).toBe('');
    const { email } = seedContact(0);
    expect(scan(JSON.parse(without.stdout)).haystack).not.toContain(email);
    expect(scan(JSON.parse(withCodec.stdout)).haystack).toContain(email);
  });

  it('should decode a k1 history after k2 takes over encrypting, and name an unknown key id', async () => {
    await engine.close();
    engine = await startTestEngine(database, { config: { ...demoDeclarations, codec: UNDER_K2 }, workflowBundlePath: bundlePath });
    await sql`update contacts set company = 'Rotated Keys Ltd' where id = 3`.execute(database.app);
    const rotated = await exportVia(engine, 3);
    const history = await rawHistory(raw, rotated.workflowId, rotated.runId);
    expect(new Set(history.payloads.filter((p) => !sdkBookkeeping(p.path)).map((p) => p.keyId))).toEqual(new Set(['k2']));
    expect(history.haystack).not.toContain('Rotated Keys Ltd');

    // The rotated client still reads a run written under k1 ...
    const old = runs[0]!;
    const result = await engine.temporal.workflow.getHandle(old.workflowId, old.runId).result();
    expect(result).toMatchObject({ status: 'completed', written: [{ key: '1', operation: 'create' }] });
    // ... and one that knows only k1 says which key it lacks.
    const onlyK1 = new Client({ connection, dataConverter: codecDataConverter(await createCodec(UNDER_K1)) });
    await expect(onlyK1.workflow.getHandle(rotated.workflowId, rotated.runId).result()).rejects.toThrow(
      "payload was encrypted with codec key 'k2', which is not configured (known: k1)",
    );
    const k1Server = await startCodecServer({ codec: await createCodec(UNDER_K1), port: 0 });
    try {
      const encrypted = history.payloads.filter((p) => p.keyId === 'k2').map((p) => p.json);
      const response = await decodeOverHttp(k1Server.url, encrypted);
      expect(response.status).toBe(400);
      expect(await response.text()).toMatch(/codec key 'k2', which is not configured \(known: k1\)/);
    } finally {
      await k1Server.close();
    }
  });

  it('should encrypt failure messages too, which may quote entity data', async () => {
    // A changed contact, so the export must reach the remote and needs the token.
    await sql`update contacts set phone = '+1-555-0404' where id = 4`.execute(database.app);
    const token = process.env[DEMO_TOKEN_ENV];
    delete process.env[DEMO_TOKEN_ENV];
    let outcome;
    let run: Run;
    try {
      const scheduled = await engine.client.scheduleExport({ integration, connector: 'contact', id: 4 });
      if (!scheduled.scheduled) throw new Error(scheduled.reason);
      outcome = await engine.client.waitForExport(scheduled);
      run = scheduled;
    } finally {
      process.env[DEMO_TOKEN_ENV] = token;
    }
    // Through the codec the failure reads as ever ...
    expect(outcome.ok ? '' : outcome.error).toMatch(/step 'export_contact' failed: .*TIDESYNC_DEMO_CRM_TOKEN/);
    // ... while the stored history keeps only SDK placeholders in clear text.
    const history = await rawHistory(raw, run.workflowId, run.runId);
    expect(history.haystack).not.toContain(DEMO_TOKEN_ENV);
    expect(history.json).toContain('"message":"Encoded failure"');
  });

  it("should refuse a pre-built workflow bundle that lacks the codec's failure converter", async () => {
    await expect(
      startTestEngine(database, {
        config: { ...demoDeclarations, codec: UNDER_K1 },
        workflowBundlePath: process.env['TIDESYNC_WORKFLOW_BUNDLE'] as string,
      }),
    ).rejects.toThrow(/was built without the codec's failure converter, so workflow failures would be stored unencrypted/);
  });

  it('should report the history size of one create pass with and without the codec', async () => {
    const withCodec = await rawHistory(raw, runs[0]!.workflowId, runs[0]!.runId);
    const sizes = {
      plain: { json: plainCreate.json.length, proto: plainCreate.protoBytes, payloads: plainCreate.payloads.length },
      codec: { json: withCodec.json.length, proto: withCodec.protoBytes, payloads: withCodec.payloads.length },
    };
    console.log(`history of one create pass (bytes): ${JSON.stringify(sizes)}`);
    // Without a codec in the config nothing is encrypted.
    expect(plainCreate.payloads.filter((p) => p.encoding === 'binary/encrypted')).toEqual([]);
    // Same events, same payloads: only each payload grows (nonce, tag, key id, the inner metadata).
    expect(sizes.codec.payloads).toBe(sizes.plain.payloads);
    expect(sizes.codec.proto).toBeGreaterThan(sizes.plain.proto);
    expect(sizes.codec.proto).toBeLessThan(sizes.plain.proto * 1.5);
  });
});
