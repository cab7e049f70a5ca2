/**
 * One phase of the ratelimit bench: the integration's limits set (or cleared), the CRM's log
 * emptied, the workload run, and its figures read from the CRM's log.
 */
import type { IntegrationSettings, RateLimit, TidesyncClient } from 'tidesync';
import type { DemoCrmServer } from '../../examples/demo/remote/crm-server';
import { busiestSecond, rateIn, statusCounts, steadyWindow, type SteadyWindow } from './request-log';
import { BATCH_PATH, type IdRange, runWorkload } from './workload';

/** The phases, in the order they run. */
export type PhaseName = 'unlimited' | 'tidesync' | 'temporal';

/** What a phase limits with. */
export interface PhaseSpec {
  readonly name: PhaseName;
  /** The tidesync limiter's limits; null: none (the integration is unlimited). */
  readonly tidesync: RateLimit | null;
  /** Temporal's `maxTaskQueueActivitiesPerSecond` on the workers' task queue; null: not set. */
  readonly temporalActivitiesPerSecond: number | null;
  /** The rate the workload is sized for: it lasts about `seconds` + 2 at this rate. */
  readonly sizedFor: number;
}

/** What every phase shares. */
export interface PhaseContext {
  readonly client: TidesyncClient;
  readonly remote: DemoCrmServer;
  /** The integration as the bench set it up; each phase sets its limits on it. */
  readonly integration: Omit<IntegrationSettings, 'rateLimit'>;
  readonly ids: IdRange;
  /** The limit the ratios are against (requests per second). */
  readonly rate: number;
  readonly seconds: number;
  readonly log: (line: string) => void;
}

/** The figures of one phase, all from the CRM's own log. */
export interface PhaseReport {
  readonly phase: PhaseName;
  readonly tidesyncLimit: RateLimit | null;
  readonly temporalActivitiesPerSecond: number | null;
  readonly workload: { readonly bulkRows: number; readonly bulkPages: number; readonly singles: number };
  /** Every request of the phase and their statuses. */
  readonly requests: number;
  readonly statuses: Record<string, number>;
  /** From the first request to the last, ms. */
  readonly spanMs: number;
  /** Each part of the workload on its own: the bulk export's batch requests, the per-entity exports' requests. */
  readonly parts: { readonly bulk: PartFigures; readonly perEntity: PartFigures };
  /** The steady window (see `steadyWindow`): its requests a second and their ratio to the limit. */
  readonly window: SteadyWindow | null;
  readonly requestsPerSec: number | null;
  readonly ratioToLimit: number | null;
  /** The most requests within any 1 s of the whole phase, its first second included. */
  readonly busiestSecond: number;
  /** The most requests in flight at the CRM at once during the phase. */
  readonly peakInFlight: number;
}

/** One part of the workload. */
export interface PartFigures {
  readonly requests: number;
  /** When it sent its last request, ms after the phase's first request. */
  readonly lastMs: number;
  /** Its requests a second from the end of the phase's first second to its own last request. */
  readonly requestsPerSec: number | null;
}

/** The first second of a phase is not part of its steady window. */
const SKIP_MS = 1_000;

/** A phase's workload: about `seconds` + 2 of requests at the rate it is sized for, half bulk pages, half per-entity exports. */
export function phaseSize(spec: Pick<PhaseSpec, 'sizedFor'>, seconds: number): { pages: number; singles: number } {
  const requests = Math.ceil(spec.sizedFor * (seconds + 2));
  const pages = Math.ceil(requests / 2);
  return { pages, singles: requests - pages };
}

/** Runs one phase; the workers must be running (with the task queue limit, for `temporal`). */
export async function runPhase(context: PhaseContext, spec: PhaseSpec): Promise<PhaseReport> {
  const { client, remote, log } = context;
  await client.upsertIntegration({
    ...context.integration,
    rateLimit: spec.tidesync ?? { requestsPerSecond: null, maxConcurrent: null },
  });
  const { pages, singles } = phaseSize(spec, context.seconds);
  const requests = pages + singles;
  const workload = context.ids.take(pages, singles);
  remote.resetStats();
  log(`${spec.name}: ${pages} bulk pages (${workload.bulkIds.length} rows) and ${singles} per-entity exports`);
  const run = await runWorkload(client, remote, context.integration.name, workload, Math.max(60_000, (requests / context.rate) * 4_000));
  const seen = remote.requests();
  const at = (list: typeof seen) => list.map((r) => r.at);
  const first = Math.min(...at(seen));
  const part = (list: typeof seen): PartFigures => {
    const last = Math.max(...at(list));
    const ms = last - (first + SKIP_MS);
    const inside = list.filter((r) => r.at >= first + SKIP_MS).length;
    return { requests: list.length, lastMs: Math.round(last - first), requestsPerSec: ms < 500 ? null : round((inside * 1000) / ms) };
  };
  const parts = { bulk: part(seen.filter((r) => r.path === BATCH_PATH)), perEntity: part(seen.filter((r) => r.path !== BATCH_PATH)) };
  // Both parts send throughout the steady window: it ends when the first of them is done.
  const window = steadyWindow(seen, first + Math.min(parts.bulk.lastMs, parts.perEntity.lastMs), SKIP_MS, context.seconds * 1_000);
  const perSec = window ? rateIn(window) : null;
  const report: PhaseReport = {
    phase: spec.name,
    tidesyncLimit: spec.tidesync,
    temporalActivitiesPerSecond: spec.temporalActivitiesPerSecond,
    workload: { bulkRows: workload.bulkIds.length, bulkPages: pages, singles },
    requests: seen.length,
    statuses: statusCounts(seen),
    spanMs: Math.round(Math.max(...at(seen)) - first),
    parts,
    window,
    requestsPerSec: perSec === null ? null : round(perSec),
    ratioToLimit: perSec === null ? null : round(perSec / context.rate, 2),
    busiestSecond: busiestSecond(seen),
    peakInFlight: remote.peakInFlight(),
  };
  log(
    `${spec.name}: ${report.requests} requests in ${run.ms} ms; ${report.requestsPerSec ?? '-'}/s over ${window?.ms ?? 0} ms ` +
      `(${report.ratioToLimit ?? '-'} of ${context.rate}/s), busiest second ${report.busiestSecond}, peak in flight ${report.peakInFlight}`,
  );
  return report;
}

function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
