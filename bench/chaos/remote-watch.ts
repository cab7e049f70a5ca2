/**
 * What the soak watches on the demo CRM, in process: how many requests it receives per second
 * (sampled from its counters), and every write it applies for us, to find effects applied twice
 * (an update that leaves a contact exactly as it was: the same change written again).
 */
import type { CrmContact } from '../../examples/demo/remote/crm-contact';

/** How often the request counter is sampled. */
const SAMPLE_MS = 100;
/** The longest the samples cover (a ten-hour soak); older ones are dropped. */
const MAX_SAMPLES = 360_000;

/** Requests the demo CRM received over time. */
export class RequestRate {
  readonly #read: () => number;
  readonly #samples: Array<{ at: number; requests: number }> = [];
  #timer: NodeJS.Timeout | undefined;

  /** `read` returns the CRM's request counter (`stats().requests`), which must never be reset meanwhile. */
  constructor(read: () => number) {
    this.#read = read;
  }

  start(): void {
    this.#sample();
    this.#timer ??= setInterval(() => this.#sample(), SAMPLE_MS);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Requests received between two times (ms since the epoch), from the samples nearest to them. */
  requestsBetween(from: number, to: number): number {
    return (this.#at(to)?.requests ?? 0) - (this.#at(from)?.requests ?? 0);
  }

  /** The most requests received in any one second between `from` and `to`. */
  peakPerSecond(from: number, to: number): number {
    let peak = 0;
    const inRange = this.#samples.filter((s) => s.at >= from && s.at <= to);
    let j = 0;
    for (const later of inRange) {
      while (j < inRange.length && (inRange[j] as { at: number }).at < later.at - 1000) j++;
      const earlier = inRange[j];
      if (earlier) peak = Math.max(peak, later.requests - earlier.requests);
    }
    return peak;
  }

  #sample(): void {
    this.#samples.push({ at: Date.now(), requests: this.#read() });
    if (this.#samples.length > MAX_SAMPLES) this.#samples.shift();
  }

  /** The last sample taken at or before `at`. */
  #at(at: number): { at: number; requests: number } | undefined {
    let found: { at: number; requests: number } | undefined;
    for (const s of this.#samples) {
      if (s.at > at) break;
      found = s;
    }
    return found;
  }
}

/** A contact's fields, without its id and version. */
function content(contact: CrmContact): string {
  const { firstName, lastName, email, phone, company } = contact;
  return JSON.stringify([firstName, lastName, email, phone, company]);
}

/**
 * Sees every write the CRM applies for us (its `onWrite` hook, called synchronously). An update
 * bumps the version; a delete reports the contact at its current version; so an update whose
 * content equals what the contact already held is the same effect applied a second time, unless
 * a bulk export in mode `all` wrote it (it pushes every row again, once): `verify` tells them apart.
 */
export class WriteObserver {
  readonly #seen = new Map<string, { version: number; content: string }>();
  /** Updates that left a contact as it was, with when they were applied (ms since the epoch). */
  readonly repeated: Array<{ remoteId: string; version: number; at: number }> = [];
  creates = 0;
  updates = 0;
  deletes = 0;

  /** The hook to give the demo CRM. */
  readonly onWrite = (contact: CrmContact): void => {
    const before = this.#seen.get(contact.id);
    const now = { version: contact.version, content: content(contact) };
    if (!before) {
      this.creates += 1;
      this.#seen.set(contact.id, now);
    } else if (before.version === contact.version) {
      this.deletes += 1;
      this.#seen.delete(contact.id);
    } else {
      this.updates += 1;
      if (before.content === now.content) this.repeated.push({ remoteId: contact.id, version: contact.version, at: Date.now() });
      this.#seen.set(contact.id, now);
    }
  };
}
