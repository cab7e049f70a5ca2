/**
 * A ledger of the processes the soak starts, so that a run that was itself SIGKILLed (no cleanup
 * ran) leaves nothing behind for long: the next run stops those processes first, by pid, and only
 * when the pid still runs the very command line it recorded.
 */
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

interface Entry {
  readonly pid: number;
  readonly cmdline: string;
  /** The signal the process shuts down cleanly on. */
  readonly signal: NodeJS.Signals;
}

function cmdlineOf(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return cmdlineOf(pid) !== '';
  } catch {
    return false;
  }
}

/** The processes of one run, written to `file` as they start. */
export class ProcessLedger {
  readonly #file: string;
  readonly #entries = new Map<number, Entry>();
  #saving: Promise<void> = Promise.resolve();

  constructor(file: string) {
    this.#file = file;
  }

  /**
   * Stops what an earlier run recorded and still runs (its clean signal, then SIGKILL after 10 s);
   * returns how many it stopped.
   */
  async stopLeftovers(log: (line: string) => void): Promise<number> {
    let entries: Entry[] = [];
    try {
      entries = JSON.parse(await readFile(this.#file, 'utf8')) as Entry[];
    } catch {
      // No ledger yet (or an unreadable one): nothing we can identify safely.
    }
    let stopped = 0;
    for (const entry of entries) {
      if (cmdlineOf(entry.pid) !== entry.cmdline) continue;
      log(`stopping pid ${entry.pid} left over from an earlier soak run`);
      process.kill(entry.pid, entry.signal);
      for (let waited = 0; waited < 10_000 && alive(entry.pid); waited += 200) await sleep(200);
      if (alive(entry.pid)) process.kill(entry.pid, 'SIGKILL');
      stopped += 1;
    }
    await writeFile(this.#file, '[]\n');
    return stopped;
  }

  /** Records a started process. */
  async add(pid: number | null | undefined, signal: NodeJS.Signals): Promise<void> {
    const cmdline = pid ? cmdlineOf(pid) : null;
    if (!pid || cmdline === null) return;
    this.#entries.set(pid, { pid, cmdline, signal });
    await this.#save();
  }

  /** Forgets a process that was stopped. */
  async remove(pid: number | null | undefined): Promise<void> {
    if (pid && this.#entries.delete(pid)) await this.#save();
  }

  /** Writes one after the other: concurrent writes of one file could interleave. */
  #save(): Promise<void> {
    const text = `${JSON.stringify([...this.#entries.values()])}\n`;
    this.#saving = this.#saving.then(() => writeFile(this.#file, text));
    return this.#saving;
  }
}
