/**
 * The faults of a soak, on a schedule over the load's duration: remote 5xx bursts, 429 storms,
 * slow responses (some applied after the client gave up), connection resets, contacts the remote
 * must refuse, one outage longer than the retry window, worker SIGKILLs, a Temporal SIGKILL and a
 * PostgreSQL restart; and the bulk exports (`bulk.ts`): the `all` run, its pause and resume, the
 * reconciliation schedule. Events run one after the other; each records when it ran and how long
 * it took. The faults meant to hit the `all` run come at their time or once the run is that far,
 * whichever is first, so they land mid-run however fast the machine is.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { TidesyncClient } from 'tidesync';
import type { FaultSpec } from '../../examples/demo/remote/crm-faults';
import type { DemoCrmServer } from '../../examples/demo/remote/crm-server';
import type { BulkDriver } from './bulk';
import type { ChangeLoad } from './load';
import type { ChaosServers } from './servers';
import type { WorkerProcess } from './worker-process';

/** What the schedule acts on. */
export interface FaultTargets {
  readonly remote: DemoCrmServer;
  readonly servers: ChaosServers;
  readonly worker: WorkerProcess;
  readonly load: ChangeLoad;
  readonly bulk: BulkDriver;
  readonly client: Pick<TidesyncClient, 'integrationHealth'>;
  readonly integration: string;
  /** How long the remote outage lasts: longer than the integration's retry window. */
  readonly outageMs: number;
}

/** One event as it happened. */
export interface EventRecord {
  readonly what: string;
  /** Seconds since the load started. */
  readonly atS: number;
  readonly tookMs: number;
  /** How far the `all` bulk run was when an event tied to it ran (0 to 1). */
  readonly bulkAllDone?: number;
  readonly detail?: string;
}

/** When the outage ran, and when the breaker tripped (ms since the epoch). */
export interface OutageWindow {
  startedAt: number;
  endedAt: number;
  trippedAt: number | null;
  probes: number;
}

interface ScheduledEvent {
  /** Fraction of the load's duration. */
  readonly at: number;
  /** Or earlier: once the `all` bulk run has gone through this fraction of its rows (while it runs). */
  readonly orAtBulk?: number;
  readonly what: string;
  readonly run: () => Promise<string | void>;
}

/** Runs the schedule for `durationMs` (or until `signal` aborts); resolves with what ran. */
export async function runFaultSchedule(
  targets: FaultTargets,
  durationMs: number,
  signal: AbortSignal,
  log: (line: string) => void,
): Promise<{ events: EventRecord[]; outage: OutageWindow | null }> {
  let outage: OutageWindow | null = null;
  // A burst is a window of time in which the remote misbehaves, as remotes do, not a number of
  // requests: while the breaker is open only probes arrive, and a count would outlive the burst.
  // Bursts never overlap (the end of one clears the CRM's faults); other events may run inside one.
  let burstEnds = Promise.resolve();
  const burst =
    (what: string, windowMs: number, ...specs: FaultSpec[]) =>
    async (): Promise<string> => {
      await burstEnds;
      const before = targets.remote.stats().faultsServed;
      for (const spec of specs) targets.remote.injectFault({ ...spec, message: `chaos: ${what}` });
      burstEnds = sleep(windowMs, undefined, { signal }).then(
        () => {
          targets.remote.clearFaults();
          log(`  ${what} over: ${targets.remote.stats().faultsServed - before} requests got the fault`);
        },
        () => targets.remote.clearFaults(),
      );
      return `${windowMs} ms of ${specs.map((s) => (s.apply ? `${s.kind} (applied)` : s.kind)).join(', then ')}`;
    };
  const forever = 1_000_000_000;
  const invalid = async () => `contact ${(await targets.load.create(true)) ?? '(transaction failed)'}`;
  const killWorker = async () => `ready again after ${await targets.worker.killAndRestart()} ms`;
  const killTemporal = async () => `serving again after ${await targets.servers.killTemporal()} ms`;
  const { bulk } = targets;
  const events: ScheduledEvent[] = [
    { at: 0.02, what: 'bulk export (all)', run: () => bulk.startAll() },
    { at: 0.04, what: '5xx burst', run: burst('5xx burst', 3000, { kind: '5xx', status: 503, count: forever }) },
    { at: 0.08, what: 'invalid contact', run: invalid },
    { at: 0.1, orAtBulk: 0.15, what: 'worker SIGKILL', run: killWorker },
    { at: 0.14, orAtBulk: 0.35, what: 'bulk pause and resume', run: () => bulk.pauseAndResume() },
    { at: 0.34, orAtBulk: 0.55, what: 'temporal SIGKILL', run: killTemporal },
    { at: 0.15, what: '429 storm', run: burst('429 storm', 5000, { kind: '429', retryAfterSeconds: 1, count: forever }) },
    { at: 0.18, what: 'invalid contact', run: invalid },
    {
      at: 0.22,
      what: 'slow responses',
      // The writer gives up after 3 s (the soak's transport timeout): the first of these are applied after it did.
      run: burst(
        'slow responses',
        8000,
        { kind: 'slow', delayMs: 4000, count: 8, apply: true },
        { kind: 'slow', delayMs: 4000, count: forever },
      ),
    },
    { at: 0.28, what: 'connection resets', run: burst('connection resets', 4000, { kind: 'reset', count: forever }) },
    { at: 0.3, what: 'invalid contact', run: invalid },
    { at: 0.32, what: 'bulk schedule (changed)', run: () => bulk.setSchedule() },
    {
      at: 0.42,
      what: 'remote outage',
      run: async () => {
        await burstEnds;
        // An all-mode run caught by the outage would give up every row it has left (thousands of
        // records for retry-failed): the outage waits for it, a while. Reconciliations may be in it.
        await bulk.waitAllEnded(start + 0.55 * durationMs, signal);
        outage = await runOutage(targets, signal, log);
        const tripped = outage.trippedAt === null ? 'never' : `${outage.trippedAt - outage.startedAt} ms in`;
        return `${outage.endedAt - outage.startedAt} ms of 503s; breaker tripped ${tripped}; ${outage.probes} probes`;
      },
    },
    { at: 0.66, what: 'worker SIGKILL', run: killWorker },
    { at: 0.72, what: 'postgres restart', run: async () => `accepting again after ${await targets.servers.restartPostgres()} ms` },
    { at: 0.78, what: 'invalid contact', run: invalid },
    {
      at: 0.8,
      what: '5xx and resets',
      run: burst('5xx and resets', 4000, { kind: '5xx', status: 502, count: 10 }, { kind: 'reset', count: forever }),
    },
    { at: 0.86, what: 'invalid contact', run: invalid },
    // Writes applied by the remote while the worker that sent them is being killed.
    { at: 0.9, what: 'slow responses', run: burst('slow responses', 6000, { kind: 'slow', delayMs: 4000, count: forever, apply: true }) },
    { at: 0.91, what: 'worker SIGKILL', run: killWorker },
  ];

  const start = Date.now();
  const records: EventRecord[] = [];
  for (const event of events) {
    const due = start + event.at * durationMs;
    const early = event.orAtBulk;
    while (Date.now() < due && !signal.aborted && !(early !== undefined && (bulk.allFraction() ?? 0) >= early)) {
      await sleep(Math.min(250, due - Date.now()), undefined, { signal }).catch(() => undefined);
    }
    if (signal.aborted) break;
    const began = Date.now();
    const fraction = bulk.allFraction();
    const detail = await event.run();
    const record = {
      what: event.what,
      atS: Math.round((began - start) / 100) / 10,
      ...(early !== undefined && fraction !== null ? { bulkAllDone: Math.round(fraction * 100) / 100 } : {}),
      tookMs: Date.now() - began,
      ...(detail ? { detail } : {}),
    };
    log(`  ${record.atS}s ${record.what}${detail ? `: ${detail}` : ''}`);
    records.push(record);
  }
  await burstEnds;
  return { events: records, outage };
}

/**
 * Every request fails with a 503 for `outageMs`, longer than the retry window, while the load
 * goes on; meanwhile the breaker is watched for its trip. Other pending faults are dropped first,
 * so the outage is exactly this window.
 */
async function runOutage(targets: FaultTargets, signal: AbortSignal, log: (line: string) => void): Promise<OutageWindow> {
  const { remote, client, integration } = targets;
  remote.clearFaults();
  remote.injectFault({ kind: '5xx', status: 503, count: 1_000_000_000, message: 'chaos: remote outage' });
  const window: OutageWindow = { startedAt: Date.now(), endedAt: 0, trippedAt: null, probes: 0 };
  log(`  remote down for ${targets.outageMs} ms`);
  try {
    let invalidAdded = false;
    while (Date.now() - window.startedAt < targets.outageMs && !signal.aborted) {
      const [health] = await client.integrationHealth({ integration }).catch(() => []);
      if (health?.state === 'degraded') {
        window.trippedAt ??= Date.now();
        window.probes = health.probes;
      }
      // One contact of the invalid set is created while the remote is down.
      if (!invalidAdded && Date.now() - window.startedAt > targets.outageMs / 2) {
        invalidAdded = true;
        await targets.load.create(true);
      }
      await sleep(250);
    }
  } finally {
    remote.clearFaults();
    window.endedAt = Date.now();
  }
  return window;
}
