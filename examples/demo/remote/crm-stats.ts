/** The demo CRM's request counters, as `GET /_control/stats` returns them. */
import type { FaultKind } from './crm-faults';

/** Request counters, as returned by `GET /_control/stats`. */
export interface CrmStats {
  /** Every `/contacts` request received, including rejected and faulted ones. */
  requests: number;
  byMethod: Record<string, number>;
  /** Applied creates, updates and deletes made through the API (remote-user edits excluded). */
  writes: number;
  writesByContact: Record<string, number>;
  /** Requests, and items of batches, answered from a stored idempotent response. */
  replays: number;
  /** Requests, and items of batches, answered with an injected fault. */
  faultsServed: number;
  /** `faultsServed` by the fault's kind. */
  faultsByKind: Partial<Record<FaultKind, number>>;
}

/** Counters at zero, for a new store and after a reset. */
export function emptyStats(): CrmStats {
  return { requests: 0, byMethod: {}, writes: 0, writesByContact: {}, replays: 0, faultsServed: 0, faultsByKind: {} };
}
