/**
 * The coalescing rules of a connector's change stream, as plain state (no Temporal API), so the
 * stream workflow stays small and the rules can be tested on their own. They are the per-entity
 * export's rules, kept per entity inside one stream:
 *
 * - a change of an entity that is quiet (not being written, not written a moment ago) goes into
 *   the next pass at once: a lone change is exported without delay;
 * - a change of an entity being written, or written less than the quiet period ago, is part of a
 *   burst: it waits until the entity has had no change for the quiet period (at most the longest
 *   wait), then one follow-up pass writes the latest state. A burst therefore costs at most one
 *   write in flight plus one follow-up;
 * - an entity is never in two passes at once, so its writes never overlap and each pass reads
 *   it after every change the previous pass had not seen.
 */
import type { EntityId } from '../entity-id';

/** An entity waiting for a pass. */
export interface PendingChange {
  readonly key: string;
  readonly id: EntityId;
  /** When its first unexported change arrived (workflow time, ms). */
  readonly firstAt: number;
  /** When its latest change arrived. */
  readonly lastAt: number;
  /** Part of a burst: waits for the quiet period before its pass. */
  readonly followUp: boolean;
}

/** The timing rules (ms). */
export interface StreamTiming {
  /** No change for this long ends a burst. */
  readonly quietMs: number;
  /** The longest a follow-up waits for its burst to end. */
  readonly maxWaitMs: number;
}

/** Entities waiting, entities being written, and when each was last written. */
export class StreamState {
  readonly #timing: StreamTiming;
  readonly #pending = new Map<string, PendingChange>();
  readonly #inFlight = new Set<string>();
  /** Entities whose pass ended less than the quiet period ago: key -> when it ended. */
  readonly #recent = new Map<string, number>();

  constructor(timing: StreamTiming, pending: readonly PendingChange[] = [], recent: ReadonlyArray<readonly [string, number]> = []) {
    this.#timing = timing;
    for (const change of pending) this.#pending.set(change.key, change);
    for (const [key, at] of recent) this.#recent.set(key, at);
  }

  /** Entities waiting for a pass. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Entities in a pass now. */
  get inFlightCount(): number {
    return this.#inFlight.size;
  }

  /** What a new run must carry over (continue-as-new): what waits, and what was written a moment ago. */
  snapshot(now: number): { pending: PendingChange[]; recent: Array<[string, number]> } {
    const recent = [...this.#recent].filter(([, at]) => now - at < this.#timing.quietMs);
    return { pending: [...this.#pending.values()], recent };
  }

  /** A change of `id` arrived at `now`. */
  changed(key: string, id: EntityId, now: number): void {
    const waiting = this.#pending.get(key);
    const recent = this.#recent.get(key);
    const busy = this.#inFlight.has(key) || (recent !== undefined && now - recent < this.#timing.quietMs);
    this.#pending.set(key, {
      key,
      id,
      firstAt: waiting?.firstAt ?? now,
      lastAt: now,
      followUp: (waiting?.followUp ?? false) || busy,
    });
  }

  /**
   * Takes up to `max` entities whose pass may start at `now` (oldest first), marking them in
   * flight; `fits(key)` may stop the batch early (e.g. a size budget).
   */
  take(now: number, max: number, fits: (key: string) => boolean = () => true): PendingChange[] {
    const ready = [...this.#pending.values()].filter((c) => this.#isReady(c, now)).sort((a, b) => a.firstAt - b.firstAt);
    const taken: PendingChange[] = [];
    for (const change of ready) {
      if (taken.length >= max || !fits(change.key)) break;
      taken.push(change);
      this.#pending.delete(change.key);
      this.#inFlight.add(change.key);
    }
    return taken;
  }

  /** The pass of `keys` ended at `now`. */
  done(keys: readonly string[], now: number): void {
    for (const key of keys) {
      this.#inFlight.delete(key);
      this.#recent.set(key, now);
    }
    // Forget entities quiet for longer than the quiet period: their next change is a lone one.
    for (const [key, at] of this.#recent) if (now - at >= this.#timing.quietMs) this.#recent.delete(key);
  }

  /** How long until the next waiting entity may start (0: one may start now; null: none waits). */
  nextReadyInMs(now: number): number | null {
    let next: number | null = null;
    for (const change of this.#pending.values()) {
      if (this.#inFlight.has(change.key)) continue;
      const wait = Math.max(0, this.#readyAt(change) - now);
      next = next === null ? wait : Math.min(next, wait);
    }
    return next;
  }

  #isReady(change: PendingChange, now: number): boolean {
    return !this.#inFlight.has(change.key) && this.#readyAt(change) <= now;
  }

  #readyAt(change: PendingChange): number {
    if (!change.followUp) return change.firstAt;
    return Math.min(change.lastAt + this.#timing.quietMs, change.firstAt + this.#timing.maxWaitMs);
  }
}
