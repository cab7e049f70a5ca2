/**
 * System folders for what the `postgres` account must reach when tidesync runs as root and the
 * project sits in a folder only root may enter (`/root/x`, a `mktemp -d` folder).
 *
 * Under /var/cache and /var/lib, not /var/tmp: tmp cleaners (systemd-tmpfiles, tmpreaper) delete
 * files unused for weeks there, which would corrupt a cluster left alone for a while, and
 * /var/tmp is world-writable, so another user could create our folder first and own what root
 * later writes into it. /var/cache and /var/lib are writable by root only.
 */
import { chmod, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { exists } from './paths';

/** Copies of the PostgreSQL binaries, one folder per package version; safe to delete. */
export const SYSTEM_CACHE_DIR = '/var/cache/tidesync';

/** PostgreSQL clusters moved out of folders the `postgres` account cannot enter. */
export const SYSTEM_DATA_DIR = '/var/lib/tidesync';

/**
 * Creates `dir` and its missing parents, each mode 0755 whatever the umask, so that every account
 * may enter them. Folders that already exist are left as they are.
 */
export async function makeSharedDir(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let folder = path.resolve(dir); !(await exists(folder)); folder = path.dirname(folder)) missing.unshift(folder);
  for (const folder of missing) {
    try {
      await mkdir(folder, { mode: 0o755 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') continue; // made by a concurrent start
      throw error;
    }
    await chmod(folder, 0o755);
  }
}
