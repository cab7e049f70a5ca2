/**
 * Commit-to-remote-write latency. Each change writes `bench-<seq>` into a contact's phone; the demo
 * CRM reports every applied write in-process. A change counts as delivered by the first write of its
 * contact carrying a seq at least its own: coalescing may skip an intermediate value, and the change
 * is then delivered by the newer one, which carries it.
 */
import { performance } from 'node:perf_hooks';
import type { CrmContact } from '../../examples/demo/remote/crm-contact';

/** The phone value of change `seq`. */
export function phoneOf(seq: number): string {
  return `bench-${seq}`;
}

const PHONE = /^bench-(\d+)$/;

/** Latency and throughput of one step (a fixed offered rate for a fixed time). */
export type StepReport = {
  /** Changes per second the schedule offered. */
  readonly offered: number;
  readonly changes: number;
  /** Commits per second achieved (first to last commit). */
  readonly commitsPerSec: number;
  /** Changes delivered per second at the remote (first to last delivery). */
  readonly deliveredPerSec: number;
  /** Remote writes per second carrying this step's values (less than delivered when writes coalesce). */
  readonly writesPerSec: number;
  readonly writes: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
  readonly undelivered: number;
  /** From the end of the offer to the last delivery (ms): how long the backlog took to drain. */
  readonly drainedMs: number;
};

interface Delivery {
  readonly seq: number;
  readonly at: number;
}

/** Records commits and remote writes of one phase and matches them up. */
export class LatencyTracker {
  /** seq -> commit time (ms, performance clock). */
  readonly #committedAt = new Map<number, number>();
  readonly #deliveredAt = new Map<number, number>();
  /** Committed, undelivered seqs per remote contact id, in commit order. */
  readonly #pending = new Map<string, number[]>();
  /** Newest write per remote contact: a write can beat our own commit bookkeeping to the finish. */
  readonly #lastWrite = new Map<string, Delivery>();
  readonly #writes: Delivery[] = [];

  /** Records that change `seq` of remote contact `remoteId` committed at `at`. */
  committed(seq: number, remoteId: string, at: number = performance.now()): void {
    this.#committedAt.set(seq, at);
    const last = this.#lastWrite.get(remoteId);
    if (last && last.seq >= seq) {
      this.#deliveredAt.set(seq, last.at);
      return;
    }
    const queue = this.#pending.get(remoteId);
    if (queue) queue.push(seq);
    else this.#pending.set(remoteId, [seq]);
  }

  /** The demo CRM's write hook: resolves every pending change the written value covers. */
  written(contact: CrmContact, at: number = performance.now()): void {
    const match = PHONE.exec(contact.phone ?? '');
    if (!match) return;
    const seq = Number(match[1]);
    this.#writes.push({ seq, at });
    const last = this.#lastWrite.get(contact.id);
    if (!last || last.seq < seq) this.#lastWrite.set(contact.id, { seq, at });
    const queue = this.#pending.get(contact.id);
    if (!queue) return;
    const still = queue.filter((pending) => {
      if (pending > seq) return true;
      this.#deliveredAt.set(pending, at);
      return false;
    });
    if (still.length > 0) this.#pending.set(contact.id, still);
    else this.#pending.delete(contact.id);
  }

  /** How many of the seqs in [from, to] are committed but not delivered yet. */
  undelivered(from: number, to: number): number {
    let count = 0;
    for (let seq = from; seq <= to; seq++) if (this.#committedAt.has(seq) && !this.#deliveredAt.has(seq)) count++;
    return count;
  }

  /** Polls until every change in [from, to] is delivered or `timeoutMs` passes; true when all were. */
  async waitDelivered(from: number, to: number, timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    // Polling does not blur the numbers: latency is taken at the write, not when we notice it.
    while (this.undelivered(from, to) > 0) {
      if (performance.now() > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return true;
  }

  /** The report of the step whose changes are seqs [from, to]. */
  report(offered: number, from: number, to: number, offerEnded: number): StepReport {
    const commits: number[] = [];
    const deliveries: number[] = [];
    const latencies: number[] = [];
    for (let seq = from; seq <= to; seq++) {
      const committed = this.#committedAt.get(seq);
      if (committed === undefined) continue;
      commits.push(committed);
      const delivered = this.#deliveredAt.get(seq);
      if (delivered === undefined) continue;
      deliveries.push(delivered);
      // Never negative: a write seen before our commit bookkeeping ran is simply "at once".
      latencies.push(Math.max(0, delivered - committed));
    }
    const writes = this.#writes.filter((w) => w.seq >= from && w.seq <= to).map((w) => w.at);
    latencies.sort((a, b) => a - b);
    return {
      offered,
      changes: commits.length,
      commitsPerSec: ratePerSec(commits),
      deliveredPerSec: ratePerSec(deliveries),
      writesPerSec: ratePerSec(writes),
      writes: writes.length,
      p50: percentile(latencies, 50),
      p95: percentile(latencies, 95),
      p99: percentile(latencies, 99),
      max: round(latencies.at(-1) ?? Number.NaN),
      undelivered: commits.length - latencies.length,
      drainedMs: deliveries.length > 0 ? round(Math.max(0, Math.max(...deliveries) - offerEnded)) : Number.NaN,
    };
  }
}

/** Nearest-rank percentile of sorted values, in ms with one decimal; NaN (null in JSON) when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return round(sorted[rank - 1] as number);
}

/**
 * Events per second between the first and the last event. Measured over the events' own span
 * rather than the schedule's, so a backlog draining after the step shows as a lower rate.
 */
export function ratePerSec(times: readonly number[]): number {
  if (times.length < 2) return 0;
  let first = Infinity;
  let last = -Infinity;
  for (const t of times) {
    first = Math.min(first, t);
    last = Math.max(last, t);
  }
  return last > first ? round(((times.length - 1) * 1000) / (last - first)) : 0;
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

/**
 * The sustained rate: the highest offered rate with every change delivered, at least 90%
 * of it delivered per second, and p95 within `p95Ms`. Null when no step qualifies.
 */
export function sustainedWithin(steps: readonly StepReport[], p95Ms: number): number | null {
  const ok = steps.filter((s) => s.p95 <= p95Ms && s.undelivered === 0 && s.deliveredPerSec >= 0.9 * s.offered);
  return ok.length > 0 ? Math.max(...ok.map((s) => s.offered)) : null;
}

/**
 * "Sustained exports per second before latency climbs": the highest offered rate whose p95 is at
 * most 3x the p95 at the lowest rate, with every change delivered and at least 90% of the offered
 * rate delivered. Null when no step qualifies.
 */
export function sustainedRate(steps: readonly StepReport[]): number | null {
  const base = steps[0]?.p95;
  if (base === undefined || Number.isNaN(base)) return null;
  const ok = steps.filter((s) => s.p95 <= 3 * base && s.undelivered === 0 && s.deliveredPerSec >= 0.9 * s.offered);
  return ok.length > 0 ? Math.max(...ok.map((s) => s.offered)) : null;
}
