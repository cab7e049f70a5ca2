/**
 * What the demo CRM saw of its `/contacts` API, request by request: when each arrived and ended,
 * and how many were in flight at once. Tests and benchmarks check rate limits against it, from the
 * remote's own clock, not from what the client believes it sent.
 */

/** One `/contacts` request as the CRM saw it. */
export interface CrmRequest {
  readonly method: string;
  readonly path: string;
  /** When its headers arrived (epoch ms, sub-millisecond). */
  readonly at: number;
  /** When its answer was sent or its connection closed (epoch ms); null while in flight. */
  endedAt: number | null;
  /** The status answered; null while in flight or when the connection was closed without an answer. */
  status: number | null;
}

/** The CRM's request log and in-flight count; `reset()` with the stats. */
export class CrmRequestLog {
  /** Enough for any test or benchmark run; older entries are dropped beyond it. */
  static readonly MAX_ENTRIES = 200_000;
  #entries: CrmRequest[] = [];
  #inFlight = 0;
  #peakInFlight = 0;

  /** Records a request that just arrived; call the returned function once it has ended. */
  begin(method: string, path: string): (status: number | null) => void {
    const entry: CrmRequest = { method, path, at: now(), endedAt: null, status: null };
    if (this.#entries.length >= CrmRequestLog.MAX_ENTRIES) this.#entries.shift();
    this.#entries.push(entry);
    this.#inFlight += 1;
    this.#peakInFlight = Math.max(this.#peakInFlight, this.#inFlight);
    let ended = false;
    return (status) => {
      if (ended) return;
      ended = true;
      entry.endedAt = now();
      entry.status = status;
      this.#inFlight -= 1;
    };
  }

  /** A copy of the log, oldest first. */
  entries(): CrmRequest[] {
    return this.#entries.map((e) => ({ ...e }));
  }

  /** The most requests that were in flight at once since the last reset. */
  get peakInFlight(): number {
    return this.#peakInFlight;
  }

  /** Forgets the log and the peak (requests in flight still count as in flight). */
  reset(): void {
    this.#entries = [];
    this.#peakInFlight = this.#inFlight;
  }
}

function now(): number {
  return performance.timeOrigin + performance.now();
}
