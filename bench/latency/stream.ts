/**
 * The change stream: each change sets one contact's phone to `bench-<seq>` in its own transaction,
 * committed on a fixed timer schedule (open loop), so a slow pipeline shows as growing latency
 * instead of quietly slowing the producer down.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Kysely, sql } from 'kysely';
import { enqueueExport } from 'tidesync';
import { phoneOf } from './measure';

/** One committed change. */
export interface CommittedChange {
  readonly seq: number;
  /** Local contact id. */
  readonly id: number;
  /** Commit time (performance clock, ms). */
  readonly at: number;
}

/**
 * Calls `fire(i)` for i = 0 .. rate*duration-1, the i-th at start + i/rate, without waiting for
 * earlier calls to finish; resolves when all have settled and rethrows the first failure.
 */
export async function runAtFixedRate(rate: number, durationMs: number, fire: (i: number) => Promise<void>): Promise<void> {
  const total = Math.round((rate * durationMs) / 1000);
  const intervalMs = 1000 / rate;
  const start = performance.now();
  const inFlight = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  for (let i = 0; i < total;) {
    // Catch up after a late timer: everything already due goes out now, not one per tick.
    while (i < total && start + i * intervalMs <= performance.now()) {
      const call = fire(i)
        .catch((error: unknown) => void (failure ??= { error }))
        .finally(() => inFlight.delete(call));
      inFlight.add(call);
      i += 1;
    }
    if (i < total) await sleep(Math.max(0, start + i * intervalMs - performance.now()));
  }
  await Promise.all(inFlight);
  if (failure) throw failure.error;
}

/** Options of `ChangeStream`. */
export interface ChangeStreamOptions {
  /** The application's own connection pool (not the worker's), as a real app would have. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly db: Kysely<any>;
  /** Local contact ids, changed round-robin so consecutive changes rarely hit the same contact. */
  readonly contactIds: readonly number[];
  readonly integration: string;
}

/** Produces changes with a global, increasing seq across every phase of the run. */
export class ChangeStream {
  readonly #options: ChangeStreamOptions;
  #nextSeq = 1;
  #nextContact = 0;

  constructor(options: ChangeStreamOptions) {
    if (options.contactIds.length === 0) throw new Error('change stream needs at least one contact');
    this.#options = options;
  }

  /** The seq the next change will get. */
  get nextSeq(): number {
    return this.#nextSeq;
  }

  /**
   * Commits one change: the phone update, plus an outbox row in the same transaction when
   * `outbox` is true. Resolves after the commit, with the commit time.
   */
  async commit(outbox: boolean): Promise<CommittedChange> {
    const { db, contactIds, integration } = this.#options;
    const seq = this.#nextSeq++;
    const id = contactIds[this.#nextContact++ % contactIds.length] as number;
    await db.transaction().execute(async (trx) => {
      await sql`update contacts set phone = ${phoneOf(seq)} where id = ${id}`.execute(trx);
      if (outbox) await enqueueExport(trx, { integration, connector: 'contact', id });
    });
    return { seq, id, at: performance.now() };
  }
}
