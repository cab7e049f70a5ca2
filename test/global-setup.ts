/**
 * Jest global setup: ONE embedded PostgreSQL and ONE Temporal dev server for the whole run, and
 * the workflow bundle built once. Tests never skip for a missing server: this starts them.
 * Test files run in worker processes, so everything they need travels in environment variables.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { SEARCH_ATTRIBUTES } from '../src/search-attributes';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../src/stack/postgres';
import { relocatedDataDir } from '../src/stack/postgres-data';
import { findTemporalCli, type TemporalCli } from '../src/stack/temporal-cli';
import { SQLITE_PRAGMAS } from '../src/stack/temporal-server';

/** What global teardown must stop and remove; kept on globalThis (setup and teardown share it). */
export interface TestStack {
  readonly postgres: EmbeddedPostgres | undefined;
  readonly temporal: TestWorkflowEnvironment | undefined;
  readonly tempDir: string;
}

/**
 * What to remove once the servers are stopped: the temp folder and, when we run as root, the
 * stand-in of the test cluster, which moves under /var/lib/tidesync because the 'postgres' user
 * cannot enter the temp folder (mkdtemp makes it 0700).
 */
export function testStackFolders(stack: TestStack): string[] {
  return [stack.tempDir, path.dirname(relocatedDataDir(testDataDir(stack.tempDir)))];
}

function testDataDir(tempDir: string): string {
  return path.join(tempDir, 'postgres');
}

/** The globalThis slot holding the {@link TestStack}. */
export const TEST_STACK_KEY = '__tidesyncTestStack';

/** Reads or writes the {@link TestStack} on globalThis. */
export function testStackSlot(): { [TEST_STACK_KEY]?: TestStack } {
  return globalThis as { [TEST_STACK_KEY]?: TestStack };
}

async function timed<T>(start: () => Promise<T>): Promise<{ value: T; seconds: string }> {
  const begin = performance.now();
  const value = await start();
  return { value, seconds: `${((performance.now() - begin) / 1000).toFixed(1)} s` };
}

async function startPostgres(tempDir: string): Promise<EmbeddedPostgres> {
  // Fresh cluster per run: tests never see a previous run's rows. fast: fsync off, it is thrown away.
  return startEmbeddedPostgres({ dataDir: testDataDir(tempDir), logFile: path.join(tempDir, 'postgres.log'), fast: true });
}

async function startTemporal(cli: TemporalCli): Promise<TestWorkflowEnvironment> {
  const { TestWorkflowEnvironment } = await import('@temporalio/testing');
  const executable =
    cli.kind === 'binary'
      ? { type: 'existing-path' as const, path: cli.path }
      : { type: 'cached-download' as const, downloadDir: cli.downloadDir };
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable,
      searchAttributes: [...SEARCH_ATTRIBUTES],
      extraArgs: SQLITE_PRAGMAS.flatMap((pragma) => ['--sqlite-pragma', pragma]),
    },
  });
  // The CLI registers search attributes as it starts: wait until tests can rely on them.
  for (let attempt = 0; ; attempt++) {
    const { customAttributes } = await env.connection.operatorService.listSearchAttributes({ namespace: 'default' });
    if (SEARCH_ATTRIBUTES.every(({ name }) => customAttributes && name in customAttributes)) return env;
    if (attempt > 100) throw new Error(`search attributes not registered on the test temporal server at ${env.address}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Bundles the workflows once for every test worker; skipped until `src/workflows/index.ts` exists. */
async function bundleWorkflows(tempDir: string): Promise<string | undefined> {
  const workflowsPath = ['index.ts', 'index.js']
    .map((file) => path.resolve(__dirname, '../src/workflows', file))
    .find((file) => existsSync(file));
  if (!workflowsPath) return undefined;
  const { bundleWorkflowCode, DefaultLogger } = await import('@temporalio/worker');
  const { code } = await bundleWorkflowCode({ workflowsPath, logger: new DefaultLogger('WARN') });
  const bundlePath = path.join(tempDir, 'workflow-bundle.js');
  await writeFile(bundlePath, code);
  return bundlePath;
}

/** Starts the shared servers and exports their addresses to the test workers. */
export default async function globalSetup(): Promise<void> {
  const tempDir = await mkdtemp(path.join(os.tmpdir(), 'tidesync-test-'));
  const usePostgres = !process.env.DATABASE_URL;
  const useTemporal = !process.env.TEMPORAL_ADDRESS;

  const [postgres, temporal, bundle] = await Promise.allSettled([
    usePostgres ? timed(() => startPostgres(tempDir)) : undefined,
    useTemporal ? timed(async () => startTemporal(await findTemporalCli())) : undefined,
    timed(() => bundleWorkflows(tempDir)),
  ]);
  const stack: TestStack = {
    postgres: postgres.status === 'fulfilled' ? postgres.value?.value : undefined,
    temporal: temporal.status === 'fulfilled' ? temporal.value?.value : undefined,
    tempDir,
  };
  testStackSlot()[TEST_STACK_KEY] = stack;
  const failed = [postgres, temporal, bundle].find((result) => result.status === 'rejected');
  if (failed?.status === 'rejected') {
    // Jest skips global teardown when setup throws: stop what did start.
    await Promise.allSettled([stack.temporal?.teardown(), stack.postgres?.stop()]);
    await Promise.all(testStackFolders(stack).map((folder) => rm(folder, { recursive: true, force: true })));
    throw failed.reason;
  }

  if (stack.postgres) process.env.DATABASE_URL = stack.postgres.url;
  if (stack.temporal) process.env.TEMPORAL_ADDRESS = stack.temporal.address;
  const bundlePath = bundle.status === 'fulfilled' ? bundle.value.value : undefined;
  if (bundlePath) process.env.TIDESYNC_WORKFLOW_BUNDLE = bundlePath;
  process.env.TIDESYNC_TEST_SETUP = '1';

  const pg = postgres.status === 'fulfilled' && postgres.value ? `postgres ${postgres.value.seconds} (embedded)` : 'postgres: DATABASE_URL';
  const tp =
    temporal.status === 'fulfilled' && temporal.value ? `temporal ${temporal.value.seconds} (dev server)` : 'temporal: TEMPORAL_ADDRESS';
  const wf = bundle.status === 'fulfilled' && bundlePath ? `workflow bundle ${bundle.value.seconds}` : 'no workflows to bundle yet';
  console.log(`\ntidesync test stack: ${pg}, ${tp}, ${wf}`);
}
