/**
 * The config file, as a user meets it: `tidesync.config.ts` found in the working directory or
 * named by --config, and every kind of broken config reported with the file and the problem
 * before anything connects (the servers given here do not exist, so a connection attempt would
 * show a different error, after a delay).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { validateConfig } from '../src/config/define-config';

const root = path.resolve(__dirname, '..');
const NOWHERE = { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/nothing', TEMPORAL_ADDRESS: '127.0.0.1:1' };

function runCli(args: string[], cwd: string): Promise<{ code: number | null; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, ...NOWHERE };
    delete env['TIDESYNC_CONFIG'];
    const child = spawn(process.execPath, [path.join(root, 'bin/tidesync.js'), ...args], { cwd, env });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr, ms: Date.now() - started }));
  });
}

const JOB = `jobs:
  shop_order_export:
    title: Export orders
    type: export
    steps:
      push_order:
        title: Push order
        reader: entity.by_id
        processor: shop.order_processor
        writer: shop.order_writer
        parameters: { table: orders, identifier: id }
`;

const config = (body: string) => `import { defineConfig, type Writer } from 'tidesync';
const writer: Writer = { write: async () => ({ remoteId: '1', remoteVersion: null }) };
${body}
`;

const GOOD = config(`export default defineConfig({
  connectors: [{ integrationType: 'shop', name: 'order', getExportJobName: () => 'shop_order_export' }],
  processors: { 'shop.order_processor': { process: (row) => ({ kind: 'changeset', data: row }) } },
  writers: { 'shop.order_writer': writer },
  jobs: ['./jobs'],
});`);

describe('the config file', () => {
  let dir: string;

  beforeAll(async () => {
    if (!existsSync(path.join(root, 'dist/cli.js'))) throw new Error('dist/ is missing: `npm test` builds it first');
    dir = await mkdtemp(path.join(tmpdir(), 'tidesync-config-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  async function app(name: string, files: Record<string, string>): Promise<string> {
    const folder = path.join(dir, name);
    await mkdir(path.join(folder, 'jobs'), { recursive: true });
    for (const [file, text] of Object.entries({ 'jobs/shop.yaml': JOB, ...files })) await writeFile(path.join(folder, file), text);
    return folder;
  }

  it('should load tidesync.config.ts from the working directory, job folders relative to it, and only then connect', async () => {
    const folder = await app('good', { 'tidesync.config.ts': GOOD });
    const run = await runCli(['worker'], folder);
    // The config passed its checks; what fails is the database, which does not exist.
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/ECONNREFUSED 127\.0\.0\.1:1/);
    expect(run.stderr).not.toContain('tidesync.config.ts');
  });

  it.each([
    ['a syntax error', { 'tidesync.config.ts': 'export default defineConfig({ connectors: [ ' }, 'cannot be loaded'],
    ['no default export', { 'tidesync.config.ts': config('export const settings = {};') }, 'has no default export'],
    [
      'a connector whose job is not declared',
      { 'tidesync.config.ts': GOOD.replace("getExportJobName: () => 'shop_order_export'", "getExportJobName: () => 'shop_nope'") },
      "connector 'shop/order' names export job 'shop_nope', which no job definition declares",
    ],
    [
      'a service a job names but the config does not register',
      { 'tidesync.config.ts': GOOD.replace("'shop.order_writer': writer", "'shop.other_writer': writer") },
      "jobs.shop_order_export.steps.push_order.writer: unknown writer 'shop.order_writer' (known: shop.other_writer)",
    ],
    [
      'a writer without write()',
      { 'tidesync.config.ts': GOOD.replace("'shop.order_writer': writer", "'shop.order_writer': { send: () => 1 } as never") },
      'writers.shop.order_writer: expected a writer (an object with write())',
    ],
    [
      'a misspelt setting',
      { 'tidesync.config.ts': GOOD.replace("jobs: ['./jobs'],", "jobs: ['./jobs'], taskQeue: 'x',") },
      'Unrecognized key: "taskQeue"',
    ],
  ])('should name the file and the problem for %s, before connecting', async (name, files, message) => {
    const folder = await app(name.replace(/\W+/g, '-'), files);
    const run = await runCli(['worker'], folder);
    expect({ code: run.code, stderr: run.stderr }).toEqual({
      code: 1,
      stderr: expect.stringContaining(path.join(folder, 'tidesync.config.ts')),
    });
    expect(run.stderr).toContain(message);
    expect(run.stderr).not.toMatch(/ECONNREFUSED|cannot connect/);
  });

  it('should say when --config names a missing file, and when a worker has no config at all', async () => {
    const folder = await app('empty', {});
    const missing = await runCli(['--config', 'nope.config.ts', 'worker'], folder);
    expect(missing.stderr).toContain(`config file ${path.join(folder, 'nope.config.ts')} does not exist`);
    const none = await runCli(['worker'], folder);
    expect(none.stderr).toContain(`no config file: none of tidesync.config.ts`);
    expect([missing.code, none.code]).toEqual([1, 1]);
  });

  it('should check the shape where defineConfig is called, naming each bad field', () => {
    expect(() =>
      validateConfig({ connectors: [{ integrationType: 'shop', name: '' }], temporal: { tls: { caFile: 'x' } } }, 'app.config.ts'),
    ).toThrow(
      /^app\.config\.ts: connectors\.0\.name: expected a non-empty string; connectors\.0\.getExportJobName: expected getExportJobName\(\).*; temporal\.tls: /,
    );
  });
});
