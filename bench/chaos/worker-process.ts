/**
 * The worker as operators run it: `node bin/tidesync.js worker` (the compiled CLI, with its outbox
 * relay and metrics endpoint) in a process of its own, which the soak SIGKILLs and starts again.
 * An exit the soak did not cause is counted and the worker started again, a bounded number of times.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ProcessLedger } from './leftovers';

/** How long a start may take until `/healthz` answers 200 (bundling is done beforehand). */
const READY_TIMEOUT_MS = 120_000;
/** Unexpected exits the soak restarts the worker after; more means something is badly wrong. */
const MAX_UNEXPECTED_RESTARTS = 5;

/** Options of `WorkerProcess`. */
export interface WorkerProcessOptions {
  /** The package root: `bin/tidesync.js` is run from there. */
  readonly root: string;
  /** Variables on top of ours: the config, the servers, the demo CRM's token, the workflow bundle. */
  readonly env: Readonly<Record<string, string>>;
  readonly metricsPort: number;
  /** More options of `tidesync worker` (`--no-relay`). */
  readonly args?: readonly string[];
  /** Options of node itself, before the script (`--cpu-prof`). */
  readonly nodeArgs?: readonly string[];
  /** The worker's stdout and stderr go here (appended across restarts). */
  readonly logFile: string;
  readonly ledger: ProcessLedger;
  readonly log: (line: string) => void;
  /** Once aborted (Ctrl-C reaches the worker too), an exit is not followed by a restart. */
  readonly signal: AbortSignal;
}

/** One worker process at a time. */
export class WorkerProcess {
  readonly #options: WorkerProcessOptions;
  #child: ChildProcess | undefined;
  #unexpectedExits = 0;
  #starts = 0;
  #stopping = false;
  #restarting: Promise<void> | undefined;

  constructor(options: WorkerProcessOptions) {
    this.#options = options;
  }

  /** Processes started so far. */
  get starts(): number {
    return this.#starts;
  }

  /** Exits the soak did not cause (each followed by a restart). */
  get unexpectedExits(): number {
    return this.#unexpectedExits;
  }

  /** The running worker's process id, or undefined when none runs. */
  get pid(): number | undefined {
    const child = this.#child;
    return child && child.exitCode === null && child.signalCode === null ? child.pid : undefined;
  }

  /** `http://127.0.0.1:<port>`: the worker's `/metrics` and `/healthz`. */
  get metricsUrl(): string {
    return `http://127.0.0.1:${this.#options.metricsPort}`;
  }

  /** Starts the worker and resolves once `/healthz` says PostgreSQL and Temporal answer; returns the ms it took. */
  async start(): Promise<number> {
    const began = performance.now();
    const { root, env, metricsPort, logFile, ledger, args = [], nodeArgs = [] } = this.#options;
    const out = await open(logFile, 'a');
    let child: ChildProcess;
    try {
      const script = [path.join(root, 'bin', 'tidesync.js'), 'worker', '--metrics-port', String(metricsPort), ...args];
      child = spawn(process.execPath, [...nodeArgs, ...script], {
        cwd: root,
        env: { ...process.env, ...env },
        stdio: ['ignore', out.fd, out.fd],
      });
    } finally {
      await out.close();
    }
    child.once('error', () => undefined); // a failed spawn shows as an exit
    this.#child = child;
    this.#starts += 1;
    const killOnExit = (): void => void child.kill('SIGKILL');
    process.once('exit', killOnExit);
    child.once('exit', (code, signal) => {
      process.removeListener('exit', killOnExit);
      void ledger.remove(child.pid);
      if (this.#child === child && !this.#stopping) this.#onUnexpectedExit(code, signal);
    });
    await ledger.add(child.pid, 'SIGTERM');
    await this.#waitReady(child);
    return Math.round(performance.now() - began);
  }

  /** SIGKILL: no shutdown, activities in flight are abandoned; then a new worker. Returns the ms until it is ready. */
  async killAndRestart(): Promise<number> {
    const began = performance.now();
    await this.#kill('SIGKILL');
    await this.start();
    return Math.round(performance.now() - began);
  }

  /** Makes sure a worker runs (after an unexpected exit and its restart). */
  async ensureRunning(): Promise<void> {
    await this.#restarting;
    if (!this.#child || this.#child.exitCode !== null || this.#child.signalCode !== null) await this.start();
  }

  /** Stops the worker: SIGTERM (the SDK drains it), SIGKILL after 20 s. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#restarting?.catch(() => undefined);
    await this.#kill('SIGTERM', 20_000);
  }

  async #kill(signal: NodeJS.Signals, graceMs = 0): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    if (graceMs > 0 && (await Promise.race([exited.then(() => true), sleep(graceMs, false, { ref: false })]))) return;
    if (graceMs > 0) child.kill('SIGKILL');
    await Promise.race([exited, sleep(10_000, undefined, { ref: false })]);
  }

  #onUnexpectedExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.#child = undefined;
    if (this.#options.signal.aborted) return;
    this.#unexpectedExits += 1;
    const { log, logFile } = this.#options;
    log(`worker exited by itself (${code ?? signal}); see ${logFile}`);
    if (this.#unexpectedExits > MAX_UNEXPECTED_RESTARTS) return;
    this.#restarting = this.start().then(
      () => undefined,
      (error: unknown) => log(`worker restart failed: ${(error as Error).message}`),
    );
  }

  async #waitReady(child: ChildProcess): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`worker exited (${child.exitCode ?? child.signalCode}) while starting; see ${this.#options.logFile}`);
      }
      try {
        const response = await fetch(`${this.metricsUrl}/healthz`, { signal: AbortSignal.timeout(3000) });
        if (response.ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`worker not healthy after ${READY_TIMEOUT_MS} ms; see ${this.#options.logFile}`);
      await sleep(250);
    }
  }
}
