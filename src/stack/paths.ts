/**
 * Where the embedded stack keeps its state: binaries it installed, the PostgreSQL data folder,
 * the Temporal database, logs and the running dev stack's address file.
 */
import { open, stat } from 'node:fs/promises';
import path from 'node:path';

/** Environment variable that moves the home folder, e.g. to share one cache between checkouts. */
export const HOME_ENV = 'TIDESYNC_HOME';

/**
 * The tidesync home folder: `TIDESYNC_HOME` when set, else `<cwd>/.tidesync`.
 * Relative values are resolved now, so children started in another folder agree with us.
 */
export function tidesyncHome(env: NodeJS.ProcessEnv = process.env): string {
  const configured = env[HOME_ENV];
  return configured ? path.resolve(configured) : path.join(process.cwd(), '.tidesync');
}

/** Whether `file` exists (following symbolic links). */
export async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** The log file of one server under `<home>/logs`, e.g. `logFilePath(home, 'postgres')`. */
export function logFilePath(home: string, name: string): string {
  return path.join(home, 'logs', `${name}.log`);
}

/**
 * The last `maxLines` lines written to `file` after byte `fromOffset`, for error messages.
 * Servers append to one log across runs, so callers pass the size the file had when they started.
 */
export async function readLogTail(file: string, fromOffset = 0, maxLines = 20): Promise<string> {
  const maxBytes = 16 * 1024;
  try {
    const handle = await open(file, 'r');
    try {
      const { size } = await handle.stat();
      const start = Math.max(fromOffset, size - maxBytes);
      const buffer = Buffer.alloc(Math.max(0, size - start));
      await handle.read(buffer, 0, buffer.length, start);
      return buffer.toString('utf8').trimEnd().split('\n').slice(-maxLines).join('\n');
    } finally {
      await handle.close();
    }
  } catch {
    return '';
  }
}
