/**
 * `tidesync codec-server`, run as users run it (the compiled CLI, a config file that imports
 * 'tidesync'): Temporal's /encode and /decode over real HTTP, CORS for the Web UI's origin with
 * its preflight, the bearer token, and clear 4xx answers for what it cannot take.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import { AesGcmCodec } from '../src/codec/aes-gcm-codec';
import { payloadFromJson, payloadToJson } from '../src/codec/payload-json';

const root = path.resolve(__dirname, '..');
const UI = 'http://ui.example:8080';
const TOKEN = randomBytes(16).toString('hex');
const K1 = randomBytes(32);
const K2 = randomBytes(32);
const contact = { firstName: 'Grace', email: 'grace.hopper@example.com' };

interface Cli {
  readonly child: ChildProcessWithoutNullStreams;
  readonly url: Promise<string>;
  readonly exit: Promise<{ code: number | null; stderr: string }>;
}

/** Starts the compiled CLI; `url` resolves once the server says where it listens. */
function startCli(args: string[], env: NodeJS.ProcessEnv): Cli {
  const child = spawn(process.execPath, [path.join(root, 'bin/tidesync.js'), ...args], { cwd: root, env });
  let stderr = '';
  let announce = (_url: string) => undefined as void;
  const url = new Promise<string>((resolve) => (announce = resolve));
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    const match = /codec server listening on (http:\/\/\S+)/.exec(stderr);
    if (match?.[1]) announce(match[1]);
  });
  const exit = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stderr })));
  const listening = Promise.race([url, exit.then(({ stderr: out }) => Promise.reject(new Error(`the CLI exited: ${out}`)))]);
  listening.catch(() => undefined); // reported to whoever awaits it; a CLI expected to fail is awaited through exit
  return { child, url: listening, exit };
}

describe('tidesync codec-server', () => {
  let dir: string;
  let config: string;
  let env: NodeJS.ProcessEnv;
  let cli: Cli;
  let url: string;

  const post = (endpoint: string, body: string, headers: Record<string, string> = {}) =>
    fetch(`${url}${endpoint}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-namespace': 'default', authorization: `Bearer ${TOKEN}`, ...headers },
      body,
    });
  const payloads = (list: unknown[]) => JSON.stringify({ payloads: list });

  beforeAll(async () => {
    if (!existsSync(path.join(root, 'dist/cli.js'))) throw new Error('dist/ is missing: `npm test` builds it first');
    dir = await mkdtemp(path.join(tmpdir(), 'tidesync-codec-server-'));
    // k2 (new, encrypting) from the environment as base64; k1 (old) from a file as hex.
    await writeFile(path.join(dir, 'k1.key'), `${K1.toString('hex')}\n`);
    config = path.join(dir, 'tidesync.config.ts');
    await writeFile(
      config,
      `import { defineConfig } from 'tidesync';
export default defineConfig({
  codec: { keys: [{ id: 'k2', ref: 'env:TIDESYNC_TEST_CODEC_K2' }, { id: 'k1', ref: ${JSON.stringify(`file:${path.join(dir, 'k1.key')}`)} }] },
});
`,
    );
    env = { ...process.env, TIDESYNC_CONFIG: config, TIDESYNC_TEST_CODEC_K2: K2.toString('base64') };
    delete env['TIDESYNC_CODEC_SERVER_TOKEN'];
    cli = startCli(['codec-server', '--port', '0', '--origin', UI, '--token', TOKEN], env);
    url = await cli.url;
  });
  afterAll(async () => {
    if (cli && cli.child.exitCode === null) cli.child.kill('SIGKILL');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('should encode under the first key and decode what it encoded and what the older key encrypted', async () => {
    const plain = payloadToJson(defaultPayloadConverter.toPayload(contact));
    const encoded = await post('/encode', payloads([plain]));
    expect(encoded.status).toBe(200);
    const body = (await encoded.json()) as { payloads: Array<{ metadata: Record<string, string>; data: string }> };
    expect(Buffer.from(body.payloads[0]!.metadata['encryption-key-id']!, 'base64').toString()).toBe('k2');
    expect(Buffer.from(body.payloads[0]!.data, 'base64').toString('latin1')).not.toContain('Grace');

    const [underK1] = await new AesGcmCodec([{ id: 'k1', bytes: K1 }]).encode([defaultPayloadConverter.toPayload(contact)]);
    // The protocol looks at the last path segment only: endpoints may be mounted anywhere.
    const decoded = await post('/api/codec/decode', payloads([body.payloads[0], payloadToJson(underK1!)]));
    expect(decoded.status).toBe(200);
    const back = ((await decoded.json()) as { payloads: Parameters<typeof payloadFromJson>[0][] }).payloads.map((p) =>
      defaultPayloadConverter.fromPayload(payloadFromJson(p)),
    );
    expect(back).toEqual([contact, contact]);
    // An empty Payloads message is `{}` in proto3 JSON; the temporal CLI sends it.
    const empty = await post('/decode', '{}');
    expect(await empty.json()).toEqual({ payloads: [] });
  });

  it("should answer the Web UI's CORS preflight for its origin, without a token, and refuse other origins", async () => {
    const preflight = await fetch(`${url}/decode`, {
      method: 'OPTIONS',
      headers: {
        origin: UI,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,x-namespace,authorization',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(UI);
    expect(preflight.headers.get('access-control-allow-methods')).toMatch(/POST/);
    expect(preflight.headers.get('access-control-allow-headers')?.split(/,\s*/).sort()).toEqual([
      'authorization',
      'content-type',
      'x-namespace',
    ]);
    expect(preflight.headers.get('access-control-allow-credentials')).toBe('true');

    // The browser lets the UI read the answer only with the allow-origin header on it too.
    const fromUi = await post('/decode', payloads([]), { origin: UI });
    expect(fromUi.status).toBe(200);
    expect(fromUi.headers.get('access-control-allow-origin')).toBe(UI);

    const elsewhere = await fetch(`${url}/decode`, { method: 'OPTIONS', headers: { origin: 'http://evil.example' } });
    expect(elsewhere.status).toBe(403);
    expect(elsewhere.headers.get('access-control-allow-origin')).toBeNull();
    expect(await elsewhere.text()).toMatch(`origin 'http://evil.example' is not allowed (allowed: ${UI})`);
    expect((await post('/decode', payloads([]), { origin: 'http://evil.example' })).status).toBe(403);
  });

  it('should refuse requests without the bearer token, or with another one, with 401', async () => {
    for (const authorization of ['', `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(1)}`, `Basic ${TOKEN}`]) {
      const response = await post('/decode', payloads([]), { authorization });
      expect({ authorization, status: response.status }).toEqual({ authorization, status: 401 });
      expect(response.headers.get('www-authenticate')).toBe('Bearer');
    }
  });

  it('should answer malformed JSON, bad payloads and unknown keys with 400 and say what is wrong', async () => {
    const malformed = await post('/decode', '{"payloads": [');
    expect(malformed.status).toBe(400);
    expect(await malformed.text()).toMatch(/^malformed JSON: /);

    const notBase64 = await post('/decode', payloads([{ metadata: { encoding: 'anNvbi9wbGFpbg==' }, data: 'not base64!' }]));
    expect(notBase64.status).toBe(400);
    expect(await notBase64.text()).toMatch(/payloads\.0\.data: expected base64/);

    const wrongShape = await post('/encode', JSON.stringify({ payloads: 'x' }));
    expect(wrongShape.status).toBe(400);
    expect(await wrongShape.text()).toMatch(/^expected \{"payloads": \[/);

    const [underK9] = await new AesGcmCodec([{ id: 'k9', bytes: randomBytes(32) }]).encode([defaultPayloadConverter.toPayload(contact)]);
    const unknown = await post('/decode', payloads([payloadToJson(underK9!)]));
    expect(unknown.status).toBe(400);
    expect(await unknown.text()).toMatch("payload was encrypted with codec key 'k9', which is not configured (known: k2, k1)");

    expect((await fetch(`${url}/decode`)).status).toBe(405);
    expect((await post('/metrics', '{}')).status).toBe(404);
  });

  it('should stop cleanly on SIGTERM', async () => {
    cli.child.kill('SIGTERM');
    const { code, stderr } = await cli.exit;
    expect(code).toBe(0);
    // Refused requests are logged, never their payloads.
    expect(stderr).toMatch(/POST \/decode -> 401/);
    expect(stderr).not.toContain('Grace');
  });

  it('should take the token from TIDESYNC_CODEC_SERVER_TOKEN', async () => {
    const fromEnv = startCli(['codec-server', '--port', '0'], { ...env, TIDESYNC_CODEC_SERVER_TOKEN: 'from-env' });
    try {
      const at = await fromEnv.url;
      const ask = (authorization: string) =>
        fetch(`${at}/decode`, { method: 'POST', headers: { authorization, 'content-type': 'application/json' }, body: '{}' });
      expect((await ask('Bearer from-env')).status).toBe(200);
      expect((await ask(`Bearer ${TOKEN}`)).status).toBe(401);
    } finally {
      fromEnv.child.kill('SIGTERM');
      await fromEnv.exit;
    }
  });

  it('should refuse to start without a codec in the config, or with a key of the wrong length, naming it', async () => {
    const bare = path.join(dir, 'bare.config.ts');
    await writeFile(bare, `import { defineConfig } from 'tidesync';\nexport default defineConfig({});\n`);
    const noCodec = await startCli(['codec-server', '--port', '0'], { ...env, TIDESYNC_CONFIG: bare }).exit;
    expect(noCodec.code).toBe(1);
    expect(noCodec.stderr).toContain(`tidesync: ${bare} has no codec: add codec: { keys: [`);

    const short = await startCli(['codec-server', '--port', '0'], { ...env, TIDESYNC_TEST_CODEC_K2: randomBytes(16).toString('base64') })
      .exit;
    expect(short.code).toBe(1);
    expect(short.stderr).toMatch(/tidesync: codec key 'k2' is 16 bytes; AES-256 needs 32 bytes/);
  });
});
