/**
 * The soak's own servers, which it takes down on purpose: an embedded PostgreSQL on a data folder
 * (fast shutdown and start again on the same folder and port, so every url stays valid) and a
 * Temporal dev server on a SQLite file (SIGKILL and start again on the same file and port: the
 * workflows, their timers and task queues survive).
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { type EmbeddedPostgres, type TemporalDevServer, startTestPostgres, startTestTemporal } from 'tidesync/testing';
import type { ProcessLedger } from './leftovers';

/** Attempts to start a server on its old port, which a dying process may still hold for a moment. */
const RESTART_ATTEMPTS = 5;

async function withRetries<T>(what: string, start: () => Promise<T>, log: (line: string) => void): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (error) {
      if (attempt >= RESTART_ATTEMPTS) throw error;
      log(`${what} did not start (attempt ${attempt}): ${(error as Error).message.split('\n')[0]}; trying again`);
      await sleep(1000 * attempt);
    }
  }
}

/** PostgreSQL and Temporal, each restartable in place. */
export class ChaosServers {
  readonly #folder: string;
  readonly #ledger: ProcessLedger;
  readonly #log: (line: string) => void;
  #postgres: EmbeddedPostgres;
  #temporal: TemporalDevServer;

  private constructor(folder: string, ledger: ProcessLedger, log: (line: string) => void, pg: EmbeddedPostgres, t: TemporalDevServer) {
    this.#folder = folder;
    this.#ledger = ledger;
    this.#log = log;
    this.#postgres = pg;
    this.#temporal = t;
  }

  /** Starts both in `folder` (fresh), recording their pids in `ledger`. */
  static async start(folder: string, ledger: ProcessLedger, log: (line: string) => void): Promise<ChaosServers> {
    const [postgres, temporal] = await Promise.allSettled([startPostgres(folder), startTemporal(folder)]);
    if (postgres.status === 'rejected' || temporal.status === 'rejected') {
      await Promise.allSettled([postgres, temporal].map((r) => (r.status === 'fulfilled' ? r.value.stop() : undefined)));
      throw postgres.status === 'rejected' ? postgres.reason : (temporal as PromiseRejectedResult).reason;
    }
    await ledger.add(postgres.value.pid, 'SIGINT');
    await ledger.add(temporal.value.pid, 'SIGTERM');
    return new ChaosServers(folder, ledger, log, postgres.value, temporal.value);
  }

  /** `postgres://` url of the soak's database. */
  get databaseUrl(): string {
    return this.#postgres.url;
  }

  /** `127.0.0.1:<port>` of the Temporal frontend. */
  get temporalAddress(): string {
    return this.#temporal.address;
  }

  /** Fast shutdown (open transactions roll back, clients are cut off), then a start on the same folder and port. */
  async restartPostgres(): Promise<number> {
    const began = performance.now();
    const old = this.#postgres;
    const port = Number(new URL(old.url).port);
    await old.stop();
    await this.#ledger.remove(old.pid);
    this.#postgres = await withRetries('postgres', () => startPostgres(this.#folder, port), this.#log);
    await this.#ledger.add(this.#postgres.pid, 'SIGINT');
    return Math.round(performance.now() - began);
  }

  /** SIGKILL (no shutdown at all), then a start on the same database file and port. */
  async killTemporal(): Promise<number> {
    const began = performance.now();
    const old = this.#temporal;
    if (old.pid === null) throw new Error('the temporal dev server runs inside the SDK here (no pid): it cannot be killed');
    process.kill(old.pid, 'SIGKILL');
    await old.stop(); // returns once the killed process has exited
    await this.#ledger.remove(old.pid);
    const port = Number(old.address.split(':').pop());
    this.#temporal = await withRetries('temporal', () => startTemporal(this.#folder, port), this.#log);
    await this.#ledger.add(this.#temporal.pid, 'SIGTERM');
    return Math.round(performance.now() - began);
  }

  /** Stops both; removes a cluster that had to live outside the folder (as root). */
  async stop(): Promise<void> {
    const postgres = this.#postgres;
    await Promise.allSettled([this.#temporal.stop(), postgres.stop()]);
    await Promise.all([this.#ledger.remove(this.#temporal.pid), this.#ledger.remove(postgres.pid)]);
    if (path.dirname(postgres.dataDir) !== this.#folder) await rm(path.dirname(postgres.dataDir), { recursive: true, force: true });
  }
}

function startPostgres(folder: string, port?: number): Promise<EmbeddedPostgres> {
  // fast: fsync off. The soak never crashes PostgreSQL itself, it restarts it with a clean shutdown.
  const options = { dataDir: path.join(folder, 'postgres'), logFile: path.join(folder, 'postgres.log'), fast: true };
  return startTestPostgres(port === undefined ? options : { ...options, port });
}

function startTemporal(folder: string, port?: number): Promise<TemporalDevServer> {
  const options = { dbFilename: path.join(folder, 'temporal.db'), logFile: path.join(folder, 'temporal.log') };
  return startTestTemporal(port === undefined ? options : { ...options, port });
}
