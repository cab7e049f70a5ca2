/**
 * Figures of one phase from the demo CRM's own request log (arrival times on the CRM's clock, not
 * what the workers believe they sent). Pure code.
 */
import type { CrmRequest } from '../../examples/demo/remote/crm-requests';

/** The part of the log the sustained rate is read from. */
export interface SteadyWindow {
  /** From the phase's first request (ms): the first second is left out (workers picking up work). */
  readonly fromMs: number;
  readonly ms: number;
  readonly requests: number;
}

/** The most requests that arrived within any 1 s (a sliding window over arrival times). */
export function busiestSecond(requests: readonly Pick<CrmRequest, 'at'>[]): number {
  const at = requests.map((r) => r.at).sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; j < at.length; j++) {
    while ((at[j] as number) - (at[i] as number) >= 1_000) i++;
    most = Math.max(most, j - i + 1);
  }
  return most;
}

/**
 * The steady window: from `skipMs` after the first arrival to the earlier of `maxMs` later and
 * `endAt` (when the first part of the workload sent its last request, so both parts ran
 * throughout). Null when that leaves less than half a second.
 */
export function steadyWindow(
  requests: readonly Pick<CrmRequest, 'at'>[],
  endAt: number,
  skipMs: number,
  maxMs: number,
): SteadyWindow | null {
  const first = Math.min(...requests.map((r) => r.at));
  if (!Number.isFinite(first)) return null;
  const from = first + skipMs;
  const to = Math.min(from + maxMs, endAt);
  if (to - from < 500) return null;
  const inside = requests.filter((r) => r.at >= from && r.at < to).length;
  return { fromMs: skipMs, ms: Math.round(to - from), requests: inside };
}

/** Requests a second over a window. */
export function rateIn(window: SteadyWindow): number {
  return (window.requests * 1000) / window.ms;
}

/** How many requests were answered with each status (`null`: closed without an answer). */
export function statusCounts(requests: readonly Pick<CrmRequest, 'status'>[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of requests) counts[String(r.status)] = (counts[String(r.status)] ?? 0) + 1;
  return counts;
}
