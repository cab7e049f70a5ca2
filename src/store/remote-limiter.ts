/**
 * One process's side of the rate limits every worker keeps together (the shared state is in
 * PostgreSQL: `rate-limits.ts`, `request-slots.ts`). Before each remote call of an integration:
 *
 * - **with limits** (requests per second, concurrent requests, or both): take a concurrency slot
 *   (an advisory lock held until the call ends), then a request slot (spaced 1 / rate apart), wait
 *   for it, check once more that no 429 paused the integration meanwhile, and go;
 * - **without limits**: no database round trip. Only a pause after a 429 holds the call back, as
 *   this process knows it: from its own 429s, from the integration row each write session reads
 *   anyway, and from a re-read at most once a second while calls keep coming.
 *
 * A call that would wait longer than `MAX_WAIT_MS` is not made: it throws an
 * `IntegrationThrottledError` so its activity is retried later instead of holding a worker slot.
 * In this process, one caller at a time polls for a free concurrency slot; the others queue
 * behind it and the release of a local slot wakes the poller at once.
 */
import type { Kysely } from 'kysely';
import type { Integration } from '../connectors/connector';
import { IntegrationThrottledError } from '../errors';
import { formatRate } from '../rate-limit';
import { formatDuration } from '../retry-policy';
import { pausedFor, recordThrottle, reserveRequest } from './rate-limits';
import type { HeldSlot, RequestSlots } from './request-slots';
import type { TidesyncDatabase } from './schema';

/** The longest one call waits for its turn inside an activity; longer, the activity is retried after the wait. */
export const MAX_WAIT_MS = 30_000;

/** How far ahead a request slot may be taken: a longer queue asks again later rather than book the future. */
export const RESERVE_AHEAD_MS = 5_000;

/** While all concurrency slots are held by other processes, how often this process asks again. */
export const SLOT_POLL_MS = 25;

/** An integration without limits re-reads its pause at most this often (and only while calls come). */
export const PAUSE_REFRESH_MS = 1_000;

/** How a waiting call keeps its activity alive and learns it was cancelled. */
export interface LimitedCall {
  readonly signal: AbortSignal;
  /** Called about once a second while the call waits (the activity's heartbeat). */
  readonly heartbeat?: () => void;
}

/** The right to make one remote call; `release()` when it has ended. */
export interface Permit {
  /** How long the call waited for it (ms). */
  readonly waitedMs: number;
  release(): Promise<void>;
}

const NO_WAIT: Permit = { waitedMs: 0, release: async () => undefined };

/** True when the integration declares a limit, so its calls go through PostgreSQL. */
export function isLimited(integration: Pick<Integration, 'rateLimit'>): boolean {
  return integration.rateLimit.requestsPerSecond !== null || integration.rateLimit.maxConcurrent !== null;
}

/** This process's queue for an integration's concurrency slots. */
class SlotQueue {
  #tail: Promise<void> = Promise.resolve();
  #wake: (() => void) | undefined;

  /** Runs `fn` when the callers queued before this one are done; leaves the queue if `signal` aborts. */
  async turn<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    const before = this.#tail;
    let done!: () => void;
    this.#tail = new Promise<void>((resolve) => (done = resolve));
    try {
      await untilAborted(before, signal);
      return await fn();
    } finally {
      done();
    }
  }

  /** Resolves after `ms`, or as soon as a slot of this process is released. */
  nap(ms: number, signal: AbortSignal): Promise<void> {
    return untilAborted(
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => finish(), ms);
        const finish = () => {
          clearTimeout(timer);
          if (this.#wake === finish) this.#wake = undefined;
          resolve();
        };
        this.#wake = finish;
      }),
      signal,
    );
  }

  /** A slot of this process was released: the waiting poller asks again now. */
  released(): void {
    this.#wake?.();
  }
}

/** How far a wait may outlast the pause this process knows of and still be that pause (see `#isPause`). */
const PAUSE_MATCH_SLACK_MS = 1_000;

/** See the module comment. One per process (per database handle), shared by its activities. */
export class RemoteLimiter {
  readonly #db: Kysely<TidesyncDatabase>;
  readonly #slots: RequestSlots;
  readonly #queues = new Map<number, SlotQueue>();
  /** What this process knows of each integration's pause: until when (local clock) and since when it knows. */
  readonly #pauses = new Map<number, { until: number; checkedAt: number }>();

  constructor(db: Kysely<TidesyncDatabase>, slots: RequestSlots) {
    this.#db = db;
    this.#slots = slots;
  }

  /** What a write session read with its integration: the pause left (ms), fresh now. */
  notePause(integrationId: number, pausedMs: number): void {
    const now = Date.now();
    this.#pauses.set(integrationId, { until: now + pausedMs, checkedAt: now });
  }

  /** Waits for the integration's limits (see the module comment) and returns the permit of one call. */
  async acquire(integration: Integration, call: LimitedCall): Promise<Permit> {
    const started = Date.now();
    if (!isLimited(integration)) {
      const paused = await this.#knownPause(integration.id);
      if (paused <= 0) return NO_WAIT;
      this.#checkWait(integration, started, paused, 'paused');
      await sleep(paused, call);
      return { waitedMs: Date.now() - started, release: NO_WAIT.release };
    }
    const max = integration.rateLimit.maxConcurrent;
    const slot = max === null ? null : await this.#takeSlot(integration, max, started, call);
    try {
      await this.#takeTurn(integration, started, call);
    } catch (err) {
      await this.#release(integration.id, slot);
      throw err;
    }
    return { waitedMs: Date.now() - started, release: () => this.#release(integration.id, slot) };
  }

  /** The remote answered 429: pause the integration for every worker (and cut its rate, when it has one). */
  async throttled(integration: Integration, retryAfterMs: number): Promise<void> {
    const paused = await recordThrottle(this.#db, integration.id, retryAfterMs);
    this.notePause(integration.id, paused);
  }

  /** Closes the slot pool. */
  async close(): Promise<void> {
    await this.#slots.close();
  }

  /** A concurrency slot, polled by one caller of this process at a time. */
  async #takeSlot(integration: Integration, max: number, started: number, call: LimitedCall): Promise<HeldSlot> {
    let queue = this.#queues.get(integration.id);
    if (!queue) this.#queues.set(integration.id, (queue = new SlotQueue()));
    const local = queue;
    let beat = Date.now();
    return local.turn(call.signal, async () => {
      for (;;) {
        const slot = await this.#slots.tryTake(integration.id, max);
        if (slot) return slot;
        if (Date.now() - started > MAX_WAIT_MS) {
          throw new IntegrationThrottledError(
            `integration '${integration.name}' had no free request slot for ${formatDuration(MAX_WAIT_MS)} ` +
              `(at most ${max} requests in flight): not sent, retried later`,
            1_000,
          );
        }
        if (Date.now() - beat >= 1_000) {
          call.heartbeat?.();
          beat = Date.now();
        }
        await local.nap(SLOT_POLL_MS * (0.5 + Math.random()), call.signal);
      }
    });
  }

  /** A request slot, waited for; taken again when a 429 paused the integration meanwhile. */
  async #takeTurn(integration: Integration, started: number, call: LimitedCall): Promise<void> {
    for (;;) {
      const reservation = await reserveRequest(this.#db, integration.id, RESERVE_AHEAD_MS);
      if (reservation.granted && reservation.waitMs <= 0) return;
      this.#checkWait(integration, started, reservation.waitMs, this.#isPause(integration.id, reservation.waitMs), reservation.rate);
      if (!reservation.granted) {
        // Only the first RESERVE_AHEAD_MS of the queue is booked: come back when this one is in it.
        await sleep(reservation.waitMs - RESERVE_AHEAD_MS + Math.random() * 100, call);
        continue;
      }
      await sleep(reservation.waitMs, call);
      // A 429 elsewhere may have paused the integration while we waited: then this slot is void.
      const since = await pausedFor(this.#db, integration.id);
      this.notePause(integration.id, since);
      if (since <= 0) return;
    }
  }

  /** Whether a wait of `waitMs` is a pause after a 429 (for the message), from what this process knows. */
  #isPause(integrationId: number, waitMs: number): 'paused' | 'queued' {
    const known = this.#pauses.get(integrationId);
    // `waitMs` was measured by the database before its answer travelled back: on a busy machine that
    // round trip alone took more than the 10 ms once allowed here, and a 2-minute pause read as a queue.
    return known && known.until - Date.now() >= waitMs - PAUSE_MATCH_SLACK_MS ? 'paused' : 'queued';
  }

  /** Refuses a wait that would end past `MAX_WAIT_MS` after the call began. */
  #checkWait(integration: Integration, started: number, waitMs: number, why: 'paused' | 'queued', rate?: number | null): void {
    const total = Date.now() - started + waitMs;
    if (total <= MAX_WAIT_MS) return;
    const reason =
      why === 'paused'
        ? `is paused for ${roughly(waitMs)} after the remote answered 429`
        : `is at its rate limit (${formatRate(rate ?? null)}): the next free request slot is ${roughly(waitMs)} away`;
    throw new IntegrationThrottledError(`integration '${integration.name}' ${reason}: not sent, retried then`, Math.ceil(waitMs));
  }

  /** The pause of an integration without limits, as this process knows it (re-read at most once a second). */
  async #knownPause(integrationId: number): Promise<number> {
    const known = this.#pauses.get(integrationId);
    if (known && Date.now() - known.checkedAt < PAUSE_REFRESH_MS) return known.until - Date.now();
    const paused = await pausedFor(this.#db, integrationId);
    this.notePause(integrationId, paused);
    return paused;
  }

  async #release(integrationId: number, slot: HeldSlot | null): Promise<void> {
    if (!slot) return;
    await slot.release();
    this.#queues.get(integrationId)?.released();
  }
}

/** A wait in whole seconds (`2m`, `35s`), as people read it. */
function roughly(ms: number): string {
  return formatDuration(Math.max(1, Math.ceil(ms / 1000)) * 1000);
}

/** Sleeps `ms`, heartbeating about once a second; rejects with the abort reason when cancelled. */
async function sleep(ms: number, call: LimitedCall): Promise<void> {
  let left = Math.max(0, ms);
  while (left > 0) {
    const step = Math.min(left, 1_000);
    await delay(step, call.signal);
    left -= step;
    if (left > 0) call.heartbeat?.();
  }
}

/** Resolves after `ms`; rejects with the abort reason (and clears the timer) when `signal` aborts first. */
function delay(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** `promise`, or a rejection with the abort reason as soon as `signal` aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new Error('cancelled while waiting for the integration rate limit');
}
