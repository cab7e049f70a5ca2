/**
 * A copy of a folder of programs in a shared cache, made once and never seen half-made: it is
 * copied into a temp sibling, marked complete last, then renamed into place. Concurrent starts
 * (Jest workers, two commands) each copy into their own temp folder; the first rename wins and
 * the others use its result.
 */
import { randomBytes } from 'node:crypto';
import { chmod, constants, copyFile, mkdir, readdir, readlink, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigurationError } from '../errors';
import { exists } from './paths';
import { isProcessAlive } from './ports';
import { makeSharedDir } from './system-dirs';

/** Written last into a copy: a folder without it is never used. */
export const COMPLETE_MARKER = '.tidesync-complete';

// Temp folders are `<target>.partial-<pid>-<random>`: the pid tells a live copy from a dead one.
const PARTIAL = '.partial-';

/** The result of {@link cachedCopy}. */
export interface CachedCopy {
  /** The complete copy. */
  readonly dir: string;
  /** True when this call made the copy, false when it reused one. */
  readonly copied: boolean;
}

/** World-readable; executable by everyone when the owner may execute it. */
function sharedMode(mode: number): number {
  return (mode & 0o755) | 0o444 | (mode & 0o100 ? 0o111 : 0);
}

/** Copies `from` into the new folder `to`, keeping symbolic links as they are. */
async function copyTree(from: string, to: string): Promise<void> {
  await mkdir(to, { mode: 0o755 });
  await chmod(to, 0o755);
  const entries = await readdir(from, { withFileTypes: true });
  await Promise.all(
    entries.map(async (entry) => {
      const source = path.join(from, entry.name);
      const target = path.join(to, entry.name);
      if (entry.isDirectory()) return copyTree(source, target);
      if (entry.isSymbolicLink()) return symlink(await readlink(source), target);
      if (!entry.isFile()) throw new ConfigurationError(`cannot copy ${source} into a cache: not a file, folder or symbolic link`);
      await copyFile(source, target, constants.COPYFILE_FICLONE);
      await chmod(target, sharedMode((await stat(source)).mode));
    }),
  );
}

/** Removes temp folders of `target` whose copying process is gone (killed mid-copy). */
async function removeDeadPartials(target: string): Promise<void> {
  const prefix = `${path.basename(target)}${PARTIAL}`;
  const names = await readdir(path.dirname(target)).catch(() => []);
  for (const name of names.filter((n) => n.startsWith(prefix))) {
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    if (!(pid > 0) || !isProcessAlive(pid)) await rm(path.join(path.dirname(target), name), { recursive: true, force: true });
  }
}

/**
 * Renames the complete `temp` to `target`. False when another process got there first. A target
 * without the marker (not made by this module, or by a non-atomic copy) is moved aside and replaced.
 */
async function publish(temp: string, target: string): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    try {
      await rename(temp, target);
      return true;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? '';
      if (!['ENOTEMPTY', 'EEXIST'].includes(code) || attempt >= 3) throw error;
      if (await exists(path.join(target, COMPLETE_MARKER))) return false;
      const aside = `${target}${PARTIAL}${process.pid}-${randomBytes(4).toString('hex')}`;
      await rename(target, aside).catch(() => undefined); // another process may have moved it already
      await rm(aside, { recursive: true, force: true });
    }
  }
}

/**
 * The complete copy of `source` at `target`: reused when `target` holds {@link COMPLETE_MARKER},
 * else copied now. File modes are kept, and made readable (executables executable) by every
 * account; `target`'s missing parents are created mode 0755.
 */
export async function cachedCopy(source: string, target: string): Promise<CachedCopy> {
  await removeDeadPartials(target);
  if (await exists(path.join(target, COMPLETE_MARKER))) return { dir: target, copied: false };
  await makeSharedDir(path.dirname(target));
  const temp = `${target}${PARTIAL}${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await copyTree(source, temp);
    const marker = path.join(temp, COMPLETE_MARKER);
    await writeFile(marker, `copy of ${source}, complete\n`);
    await chmod(marker, 0o644);
    return { dir: target, copied: await publish(temp, target) };
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}
