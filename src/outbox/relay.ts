/**
 * The outbox relay: claims pending outbox rows with `FOR UPDATE SKIP LOCKED` (so relays can run
 * side by side), hands the changed entities of each connector to its change stream with one
 * signal-with-start per batch (`workflows/stream-export.ts`), and marks the rows. It wakes on
 * NOTIFY for low latency and polls as a fallback. While Temporal is unreachable the rows stay
 * pending and are delivered once it is back; a row delivered twice has no second effect, because
 * the stream exports the current state and skips what is already on the remote.
 */
import { Client as PgClient } from 'pg';
import type { Kysely } from 'kysely';
import { encodeEntityId, type EntityId } from '../entity-id';
import { ConfigurationError } from '../errors';
import { claimPendingRows, markDispatched, markSkipped, purgeOutbox } from '../store/outbox';
import type { TidesyncDatabase } from '../store/schema';
import { OUTBOX_CHANNEL } from './channel';

/** How long dispatched and skipped outbox rows are kept unless configured otherwise: 7 days. */
export const DEFAULT_OUTBOX_RETENTION_MS = 7 * 86_400_000;

/** Rows deleted per statement, so housekeeping never holds a long transaction. */
const PURGE_BATCH = 10_000;

/** What the relay needs of a client: hand a connector's changed entities to Temporal, or say why not. */
export interface ExportScheduler {
  streamExports(
    request: { integration: string; connector: string; ids: readonly EntityId[] },
    options: { invalidIds: 'refuse' },
  ): Promise<ReadonlyArray<{ readonly scheduled: true } | { readonly scheduled: false; readonly reason: string }>>;
}

/** Options of `OutboxRelay`. */
export interface OutboxRelayOptions {
  readonly db: Kysely<TidesyncDatabase>;
  /** Used for a dedicated LISTEN connection. */
  readonly databaseUrl: string;
  /** Hands entities to Temporal: a `TidesyncClient`. */
  readonly client: ExportScheduler;
  /** Rows claimed per transaction; default 200. */
  readonly batchSize?: number;
  /** Poll interval when no NOTIFY arrives; default 1000 ms. */
  readonly pollIntervalMs?: number;
  /** Longest wait between retries while Temporal or the database fails; default 5000 ms. */
  readonly maxRetryDelayMs?: number;
  /** Dispatched and skipped rows older than this are deleted; default 7 days. Pending rows never are. */
  readonly retentionMs?: number;
  /** How often the relay removes old rows; default every 10 minutes (the first time at start). */
  readonly housekeepingIntervalMs?: number;
  readonly log?: (line: string) => void;
}

/** What one batch did. */
export interface RelayBatch {
  readonly claimed: number;
  readonly dispatched: number;
  readonly skipped: number;
}

interface Group {
  readonly integration: string;
  readonly connector: string;
  readonly ids: Map<string, { id: EntityId; rowIds: string[] }>;
}

/** Moves outbox rows to Temporal. `start()` runs it in the background; `stop()` ends it. */
export class OutboxRelay {
  readonly #options: Required<Omit<OutboxRelayOptions, 'log'>> & { log: (line: string) => void };
  #running: Promise<void> | undefined;
  #stopped = false;
  #wake: (() => void) | undefined;
  #listener: PgClient | undefined;

  constructor(options: OutboxRelayOptions) {
    this.#options = {
      batchSize: 200,
      pollIntervalMs: 1000,
      maxRetryDelayMs: 5000,
      retentionMs: DEFAULT_OUTBOX_RETENTION_MS,
      housekeepingIntervalMs: 10 * 60_000,
      log: () => undefined,
      ...options,
    };
  }

  /** Starts relaying in the background. */
  start(): void {
    this.#running ??= this.#loop();
  }

  /** Stops relaying and waits for the batch in progress to finish. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.#running;
    await this.#listener?.end().catch(() => undefined);
    this.#listener = undefined;
  }

  /** Claims and dispatches one batch; throws (leaving rows pending) when Temporal is unreachable. */
  async dispatchBatch(): Promise<RelayBatch> {
    const { db, batchSize, client } = this.#options;
    return db.transaction().execute(async (trx) => {
      const rows = await claimPendingRows(trx, batchSize);
      if (rows.length === 0) return { claimed: 0, dispatched: 0, skipped: 0 };

      // One entry per entity, however many rows (changes) it has in this batch; one signal per connector.
      const groups = new Map<string, Group>();
      for (const row of rows) {
        const groupKey = JSON.stringify([row.integration, row.connector]);
        let group = groups.get(groupKey);
        if (!group) groups.set(groupKey, (group = { integration: row.integration, connector: row.connector, ids: new Map() }));
        const key = encodeEntityId(row.entityId);
        const entry = group.ids.get(key) ?? { id: row.entityId, rowIds: [] };
        entry.rowIds.push(row.id);
        group.ids.set(key, entry);
      }

      const dispatched: string[] = [];
      const skipped = new Map<string, string[]>();
      const skip = (reason: string, rowIds: string[]) => skipped.set(reason, [...(skipped.get(reason) ?? []), ...rowIds]);
      for (const group of groups.values()) {
        const entries = [...group.ids.values()];
        let results;
        try {
          // A row with a bad id is skipped with the reason; the others of its batch go on.
          results = await client.streamExports(
            { integration: group.integration, connector: group.connector, ids: entries.map((e) => e.id) },
            { invalidIds: 'refuse' },
          );
        } catch (err) {
          // Unknown integration or connector: no retry will help; keep the rows, with the reason.
          if (!(err instanceof ConfigurationError)) throw err;
          skip(
            err.message,
            entries.flatMap((e) => e.rowIds),
          );
          continue;
        }
        results.forEach((result, i) => {
          const rowIds = entries[i]?.rowIds ?? [];
          if (result.scheduled) dispatched.push(...rowIds);
          else skip(result.reason, rowIds);
        });
      }

      await markDispatched(trx, dispatched);
      for (const [reason, rowIds] of skipped) await markSkipped(trx, reason, rowIds);
      const skippedCount = [...skipped.values()].reduce((n, ids) => n + ids.length, 0);
      return { claimed: rows.length, dispatched: dispatched.length, skipped: skippedCount };
    });
  }

  /** Removes dispatched and skipped rows past the retention, in short batches; returns how many. */
  async purgeOld(): Promise<number> {
    let removed = 0;
    for (let batch = PURGE_BATCH; batch === PURGE_BATCH && !this.#stopped; removed += batch) {
      batch = await purgeOutbox(this.#options.db, this.#options.retentionMs, PURGE_BATCH);
    }
    return removed;
  }

  async #loop(): Promise<void> {
    let failures = 0;
    let housekeepingAt = 0;
    while (!this.#stopped) {
      await this.#ensureListening();
      if (Date.now() >= housekeepingAt) {
        housekeepingAt = Date.now() + this.#options.housekeepingIntervalMs;
        await this.purgeOld().then(
          (n) => n > 0 && this.#options.log(`outbox relay: removed ${n} rows older than the retention`),
          (err: unknown) => this.#options.log(`outbox relay: housekeeping failed: ${(err as Error).message}`),
        );
      }
      let batch: RelayBatch | undefined;
      try {
        batch = await this.dispatchBatch();
        failures = 0;
      } catch (err) {
        failures += 1;
        const delay = Math.min(this.#options.maxRetryDelayMs, 100 * 2 ** failures);
        this.#options.log(`outbox relay: ${(err as Error).message}; retrying in ${delay} ms`);
        await this.#sleep(delay);
        continue;
      }
      // A full batch means more may be waiting: go again at once.
      if (batch.claimed < this.#options.batchSize) await this.#sleep(this.#options.pollIntervalMs);
    }
  }

  /** Sleeps until `ms` pass, a NOTIFY arrives, or the relay stops. */
  #sleep(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }

  /** Keeps one LISTEN connection open; without it the relay still works, by polling. */
  async #ensureListening(): Promise<void> {
    if (this.#listener || this.#stopped) return;
    const listener = new PgClient({ connectionString: this.#options.databaseUrl });
    listener.on('notification', () => this.#wake?.());
    listener.on('error', (err) => {
      this.#options.log(`outbox relay: LISTEN connection lost (${err.message}); polling until it is back`);
      if (this.#listener === listener) this.#listener = undefined;
      listener.end().catch(() => undefined);
    });
    try {
      await listener.connect();
      await listener.query(`LISTEN ${OUTBOX_CHANNEL}`);
      this.#listener = listener;
    } catch (err) {
      this.#options.log(`outbox relay: cannot LISTEN (${(err as Error).message}); polling`);
      await listener.end().catch(() => undefined);
    }
  }
}
