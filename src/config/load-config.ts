/**
 * Finds and loads the application's `tidesync.config.{ts,mts,cts,mjs,js,cjs}`: `--config`, else
 * `TIDESYNC_CONFIG`, else the working directory. TypeScript and ES modules load through jiti, and
 * `import ... from 'tidesync'` in the config resolves to this very copy of tidesync, so the
 * classes it hands us are ours.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ConfigurationError } from '../errors';
import { type TidesyncConfig, validateConfig } from './define-config';

/** File names looked for in the working directory, in this order. */
export const CONFIG_FILE_NAMES = [
  'tidesync.config.ts',
  'tidesync.config.mts',
  'tidesync.config.cts',
  'tidesync.config.mjs',
  'tidesync.config.js',
  'tidesync.config.cjs',
] as const;

/** The environment variable naming the config file. */
export const CONFIG_ENV = 'TIDESYNC_CONFIG';

/** A loaded configuration and where it came from. */
export interface LoadedConfig {
  /** The config file, or null when none was found (an empty configuration). */
  readonly file: string | null;
  /** The configuration, with `jobs` folders made absolute. */
  readonly config: TidesyncConfig;
}

/** Options of `loadConfig`. */
export interface LoadConfigOptions {
  /** A config file (`--config`); relative to `cwd`. */
  readonly file?: string;
  /** Where to look; default `process.cwd()`. */
  readonly cwd?: string;
  /** Default `process.env` (for `TIDESYNC_CONFIG`). */
  readonly env?: NodeJS.ProcessEnv;
  /** Fail when no config file is found; default false (an empty configuration). */
  readonly required?: boolean;
}

/** Where the config file is, or null when none is named and none is in `cwd`. */
export function findConfigFile(options: LoadConfigOptions = {}): string | null {
  const cwd = options.cwd ?? process.cwd();
  const named = options.file ?? (options.env ?? process.env)[CONFIG_ENV];
  if (named) {
    const file = path.resolve(cwd, named);
    if (!existsSync(file)) throw new ConfigurationError(`config file ${file} does not exist`);
    return file;
  }
  for (const name of CONFIG_FILE_NAMES) {
    const file = path.join(cwd, name);
    if (existsSync(file)) return file;
  }
  return null;
}

/** Loads, checks and returns the configuration; every error names the file. */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<LoadedConfig> {
  const file = findConfigFile(options);
  if (!file) {
    if (options.required) {
      throw new ConfigurationError(
        `no config file: none of ${CONFIG_FILE_NAMES.join(', ')} in ${options.cwd ?? process.cwd()}; pass --config FILE or set ${CONFIG_ENV}`,
      );
    }
    return { file: null, config: {} };
  }
  const exported = await importConfigModule(file);
  if (exported === undefined || exported === null) {
    throw new ConfigurationError(`${file}: has no default export; write \`export default defineConfig({ ... })\``);
  }
  const config = validateConfig(exported, file);
  const dir = path.dirname(file);
  return { file, config: { ...config, jobs: (config.jobs ?? []).map((d) => path.resolve(dir, d)) } };
}

/** Imports the file through jiti (TypeScript, ESM or CommonJS) and returns its default export. */
async function importConfigModule(file: string): Promise<unknown> {
  const { createJiti } = await import('jiti');
  const jiti = createJiti(__filename, {
    interopDefault: false,
    // The config's `import ... from 'tidesync'` must be this copy, not another install or the sources.
    alias: { 'tidesync/testing': path.join(__dirname, '..', 'testing'), tidesync: path.join(__dirname, '..', 'index') },
  });
  let loaded: unknown;
  try {
    loaded = await jiti.import<unknown>(file);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new ConfigurationError(`${file}: cannot be loaded: ${message}`, { cause: err });
  }
  // `export default` (ESM, TypeScript); compiled to CommonJS it may be wrapped once more.
  let value = loaded as { default?: unknown; __esModule?: boolean } | null | undefined;
  for (let depth = 0; depth < 2 && value && typeof value === 'object' && 'default' in value; depth++) {
    value = value.default as typeof value;
  }
  if (value !== loaded) return value;
  // No default export: CommonJS `module.exports = defineConfig(...)` is the config itself.
  const commonJs = /\.c?js$/.test(file) && !(loaded as { __esModule?: boolean } | null)?.__esModule;
  return commonJs ? loaded : undefined;
}
