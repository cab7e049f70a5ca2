/**
 * Where a cluster lives. As root, PostgreSQL runs as `postgres`, which may not be allowed to enter
 * the folder asked for (a project under /root, a `mktemp -d` folder). Rather than open the
 * user's folders to it, the cluster then goes to a folder named after the asked path under
 * /var/lib/tidesync, where later runs find it again, and a note beside the asked path says where.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigurationError } from '../errors';
import { exists } from './paths';
import { canEnter, firstClosedFolder, type PostgresUser, SUPERUSER } from './postgres-user';
import { makeSharedDir, SYSTEM_DATA_DIR } from './system-dirs';

/** Where {@link locateData} put a cluster. */
export interface DataLocation {
  /** The cluster folder to use. */
  readonly dataDir: string;
  /** True when it is not the folder asked for but its stand-in under the system data folder. */
  readonly relocated: boolean;
}

/** The stand-in for cluster folder `dataDir`: `<root>/data-<first 16 hex of sha256(resolved dataDir)>/postgres`. */
export function relocatedDataDir(dataDir: string, root: string = SYSTEM_DATA_DIR): string {
  const hash = createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 16);
  return path.join(root, `data-${hash}`, 'postgres');
}

/** The note left beside a relocated `dataDir`, e.g. `.tidesync/postgres.location.txt`. */
export function locationNotePath(dataDir: string): string {
  return `${path.resolve(dataDir)}.location.txt`;
}

async function hasCluster(dataDir: string): Promise<boolean> {
  return exists(path.join(dataDir, 'PG_VERSION'));
}

async function leaveNotes(asked: string, moved: string, closed: string): Promise<void> {
  const container = path.dirname(moved);
  const why = `the '${SUPERUSER}' user, which runs PostgreSQL when tidesync runs as root, could not enter ${closed}`;
  await writeFile(
    path.join(container, 'ORIGIN.txt'),
    `PostgreSQL data that tidesync was asked to keep in ${asked}; kept here because ${why}.\n`,
  );
  await writeFile(
    locationNotePath(asked),
    `The PostgreSQL data of this folder lives in ${moved}, because ${why}.\n` +
      `tidesync uses it while it exists. Delete ${container} to drop the data.\n`,
  );
}

/**
 * The cluster folder to use for `dataDir`: `dataDir` itself unless we run PostgreSQL as `user`
 * (root) and that user cannot enter its parent. Then, unless `dataDir` already holds a cluster
 * (an error: we would not move it silently), its stand-in {@link relocatedDataDir}, which is
 * used from then on while it exists, even if the parent opens up.
 */
export async function locateData(dataDir: string, user: PostgresUser | undefined, root: string = SYSTEM_DATA_DIR): Promise<DataLocation> {
  const asked = path.resolve(dataDir);
  if (!user) return { dataDir: asked, relocated: false };
  const parent = path.dirname(asked);
  const moved = relocatedDataDir(asked, root);
  await mkdir(parent, { recursive: true });
  // Only when the parent is closed: finding which folder closes it costs a process per level.
  const closed = (await canEnter(user, parent)) ? undefined : ((await firstClosedFolder(user, parent)) ?? parent);
  if (await hasCluster(asked)) {
    if (!closed) return { dataDir: asked, relocated: false };
    throw new ConfigurationError(
      `postgres data folder ${asked} holds a cluster but the '${SUPERUSER}' user cannot enter ${closed}; let it enter (chmod o+x), move the cluster away to start a new one in ${moved}, or set DATABASE_URL`,
    );
  }
  if (!closed && !(await hasCluster(moved))) return { dataDir: asked, relocated: false };

  const container = path.dirname(moved);
  await makeSharedDir(container);
  if (!(await canEnter(user, container))) {
    const blocked = (await firstClosedFolder(user, container)) ?? container;
    throw new ConfigurationError(
      `the '${SUPERUSER}' user cannot enter ${blocked}, so the cluster of ${asked} cannot be kept in ${container} either; let it enter or set DATABASE_URL`,
    );
  }
  await leaveNotes(asked, moved, closed ?? parent);
  return { dataDir: moved, relocated: true };
}
