/**
 * One soak: the stack, a warm-up, the load and the fault schedule side by side, then the end
 * (drain, retry the outage's failures, drain) and the checks; everything it started is stopped
 * in every case.
 */
import { rm } from 'node:fs/promises';
import { sql } from 'kysely';
import { Cleanups } from '../latency/environment';
import { BULK_SETTINGS, BulkDriver, type BulkRunReport } from './bulk';
import { ChangeLoad, seededRandom } from './load';
import { RequestRate } from './remote-watch';
import { type OutageWindow, runFaultSchedule } from './schedule';
import { retryOutageFailures, waitUntilQuiet } from './settle';
import { CHAOS_INTEGRATION, CHAOS_SETTINGS, type ChaosStack, startChaosStack } from './stack';
import { verify } from './verify';

/** Options of a soak (`npm run chaos -- --minutes N --rate N --seed N --keep`). */
export interface ChaosOptions {
  /** How long the load and the faults run. */
  readonly minutes: number;
  /** Changes committed per second. */
  readonly rate: number;
  /** Seed of the load's choices. */
  readonly seed: number;
  /** Keep the run's folder (data, logs) even when the checks pass. */
  readonly keep: boolean;
  /** Contacts inserted before the soak without an export, for the bulk exports to bring over. */
  readonly bulkContacts: number;
}

/** Contacts created and exported before the faults begin. */
const WARM_UP_CONTACTS = 40;

/** Sums of the execution records of the soak's integration: the per-entity ones, or the bulk runs'. */
async function executionTotals(stack: ChaosStack, bulk: boolean) {
  const row = await stack.tidesync.store
    .selectFrom('job_execution')
    .select([
      sql<string>`count(*)`.as('passes'),
      sql<string>`coalesce(sum(written_count), 0)`.as('written'),
      sql<string>`coalesce(sum(skipped_count), 0)`.as('skipped'),
      sql<string>`coalesce(sum(failed_count), 0)`.as('failed'),
      sql<string>`count(*) filter (where status = 'failed')`.as('failedPasses'),
      // The demo CRM's own 422s: records it refused (the invalid set), each time one was written.
      sql<string>`coalesce(sum((select count(*) from jsonb_array_elements(failures) f where f->>'code' = 'remote_permanent')), 0)`.as(
        'refusedByRemote',
      ),
    ])
    .where('integration', '=', CHAOS_INTEGRATION)
    .where('workflow_id', bulk ? 'like' : 'not like', 'bulk/%')
    .executeTakeFirstOrThrow();
  return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, Number(v)]));
}

/** The outage as the demo CRM saw it; the breaker should bound the requests once it tripped. */
function outageFigures(outage: OutageWindow | null, rate: RequestRate) {
  if (!outage) return null;
  const { startedAt, endedAt, trippedAt } = outage;
  // Writes already past the breaker's gate when it tripped still fail within a second or so.
  const settled = trippedAt === null ? null : trippedAt + 1000;
  return {
    ms: endedAt - startedAt,
    retryWindowMs: CHAOS_SETTINGS.retryWindowMs,
    requests: rate.requestsBetween(startedAt, endedAt),
    peakRequestsPerSecond: rate.peakPerSecond(startedAt, endedAt),
    breakerTrippedAfterMs: trippedAt === null ? null : trippedAt - startedAt,
    afterTrip:
      settled === null
        ? null
        : {
            seconds: Math.round((endedAt - settled) / 100) / 10,
            requests: rate.requestsBetween(settled, endedAt),
            // One probe per interval: the most requests the breaker lets through meanwhile.
            boundRequests: Math.floor((endedAt - settled) / CHAOS_SETTINGS.probeIntervalMs) + 1,
            peakRequestsPerSecond: rate.peakPerSecond(settled, endedAt),
            probes: outage.probes,
          },
  };
}

/**
 * The contacts the CRM must refuse (an email without '@'), with when the load committed each
 * (NaN for one whose transaction reported a failure yet committed: when is unknown).
 */
async function invalidContacts(stack: ChaosStack, load: ChangeLoad): Promise<Map<number, number>> {
  const rows = await stack.appDb.selectFrom('contacts').select(['id', 'email']).where('email', 'not like', '%@%').execute();
  return new Map(rows.map((r: { id: number }) => [r.id, load.invalidIds.get(r.id) ?? Number.NaN]));
}

/** A bulk run for the report: its times as seconds since the load began. */
function bulkRunFigures(run: BulkRunReport, loadStarted: number) {
  const { startedAt, endedAt, ...rest } = run;
  return { ...rest, startS: Math.round((startedAt - loadStarted) / 100) / 10, endS: Math.round((endedAt - loadStarted) / 100) / 10 };
}

/** Runs one soak and resolves with its report; rejects (after cleaning up) when it could not run. */
export async function runChaos(root: string, options: ChaosOptions, signal: AbortSignal, log: (line: string) => void) {
  const began = Date.now();
  const cleanups = new Cleanups();
  let passed = false;
  let folder: string | undefined;
  try {
    const stack = await startChaosStack(root, cleanups, signal, log);
    folder = stack.folder;
    const { tidesync, demo } = stack;
    const load = new ChangeLoad({ db: stack.appDb, integration: CHAOS_INTEGRATION, random: seededRandom(options.seed) });
    await load.seed(options.bulkContacts);
    log(`seeded ${options.bulkContacts} contacts without exports, for the bulk exports`);
    const bulk = new BulkDriver({ tidesync, cli: stack.cli, load, integration: CHAOS_INTEGRATION, log });
    bulk.timeline.start();
    cleanups.add('stop following bulk exports', async () => bulk.stop());
    for (let i = 0; i < WARM_UP_CONTACTS; i++) await load.create();
    const warmUp = await waitUntilQuiet(tidesync, CHAOS_INTEGRATION, signal, log);
    if (!warmUp.quiet) throw new Error(`the warm-up exports did not finish: ${JSON.stringify(warmUp.last)}`);
    log(`warm-up: ${WARM_UP_CONTACTS} contacts exported in ${warmUp.ms} ms`);

    const rate = new RequestRate(() => demo.remote.stats().requests);
    rate.start();
    cleanups.add('stop sampling', async () => rate.stop());
    const durationMs = Math.round(options.minutes * 60_000);
    log(`load: ${options.rate} changes/s for ${durationMs / 1000} s, with faults (seed ${options.seed})`);
    // A fault that cannot be carried out (a server that does not come back) ends the load too.
    const stopLoad = new AbortController();
    signal.addEventListener('abort', () => stopLoad.abort(), { once: true });
    const loadStarted = Date.now();
    const [, schedule] = await Promise.all([
      load.run(options.rate, durationMs, stopLoad.signal),
      runFaultSchedule(
        {
          remote: demo.remote,
          servers: stack.servers,
          worker: stack.worker,
          load,
          bulk,
          client: tidesync.client,
          integration: CHAOS_INTEGRATION,
          outageMs: CHAOS_SETTINGS.retryWindowMs + 12_000,
        },
        durationMs,
        signal,
        log,
      ).catch((error: unknown) => {
        stopLoad.abort();
        throw error;
      }),
    ]);
    const loadMs = Date.now() - loadStarted;
    demo.remote.clearFaults();
    signal.throwIfAborted();
    // No new reconciliation from here on; those already started go to their end (the drain waits for them).
    await bulk.removeSchedule();

    log(`faults stopped after ${loadMs} ms (${load.changesMade} changes); waiting for the pipeline to drain`);
    await stack.worker.ensureRunning();
    const drained = await waitUntilQuiet(tidesync, CHAOS_INTEGRATION, signal, log);
    signal.throwIfAborted();
    const retried = await retryOutageFailures(tidesync, CHAOS_INTEGRATION);
    log(
      `retry-failed: ${retried.retried} records the retry window failed: ${retried.delivered} delivered, ${retried.refused} refused (422)`,
    );
    const drainedAgain = await waitUntilQuiet(tidesync, CHAOS_INTEGRATION, signal, log);
    rate.stop();
    signal.throwIfAborted();

    const invalid = await invalidContacts(stack, load);
    const bulkRuns = await bulk.collect(invalid);
    const verdict = await verify({
      db: stack.appDb,
      client: tidesync.client,
      demo,
      integration: CHAOS_INTEGRATION,
      maxId: load.maxId,
      writes: stack.writes,
      rewrites: bulkRuns.filter((r) => r.mode === 'all'),
    });
    const crm = demo.remote.stats();
    // After the checks: a reconciliation that finds anything to write means something was out of sync.
    log('tidesync export --all: a last reconciliation, which must find nothing to write');
    const reconciliation = await bulk.reconcile(invalid);
    bulk.stop();
    const allRuns = [...bulkRuns, reconciliation];
    for (const r of allRuns) {
      log(
        `bulk ${r.workflowId} (${r.mode}, ${r.origin}): ${r.status}, ${r.done} rows (written ${r.written}, skipped ${r.skipped}, ` +
          `failed ${r.failed}) in ${Math.round(r.durationMs / 1000)} s over ${r.runs} runs${r.problems.length ? `; ${r.problems.length} problems` : ''}`,
      );
    }
    // The faults the all-mode run lived through: it is meant to cross a worker SIGKILL and the Temporal restart.
    const allRun = bulkRuns.find((r) => r.origin === 'client');
    const crossed = allRun
      ? schedule.events
          .filter((e) => loadStarted + e.atS * 1000 >= allRun.startedAt && loadStarted + e.atS * 1000 <= allRun.endedAt)
          .map((e) => e.what)
      : [];
    const missed = ['worker SIGKILL', 'temporal SIGKILL'].filter((what) => !crossed.includes(what));
    const bulkProblems = [
      ...allRuns.flatMap((r) => r.problems.map((p) => `${r.workflowId}: ${p}`)),
      ...(missed.length > 0 ? [`the all-mode run ended before a ${missed.join(' and a ')}: seed more contacts (--bulk-contacts)`] : []),
      ...(bulkRuns.some((r) => r.mode === 'all' && r.finished) ? [] : ['no all-mode run finished']),
      ...(bulkRuns.some((r) => r.origin === 'schedule' && r.finished) ? [] : ['no scheduled changed-mode run finished']),
      ...(bulk.pause?.ok ? [] : [`the pause and resume did not hold: ${JSON.stringify(bulk.pause)}`]),
    ];
    const failedAsExpected = verdict.failedAsExpected && allRuns.every((r) => r.failuresExact);
    const bulkOk = bulkProblems.length === 0;
    passed = verdict.lost === 0 && verdict.duplicates === 0 && failedAsExpected && verdict.remoteMatchesLocal && bulkOk;
    const workerKills = schedule.events.filter((e) => e.what === 'worker SIGKILL').length;
    return {
      lost: verdict.lost,
      duplicates: verdict.duplicates,
      failedAsExpected,
      remoteMatchesLocal: verdict.remoteMatchesLocal,
      bulkExportsOk: bulkOk,
      changes: { made: load.changesMade, ...load.counters, perSecond: options.rate },
      exported: {
        remoteCreates: stack.writes.creates,
        remoteUpdates: stack.writes.updates,
        remoteDeletes: stack.writes.deletes,
        idempotentReplays: crm.replays,
        executions: await executionTotals(stack, false),
        bulkExecutions: await executionTotals(stack, true),
      },
      bulkExports: {
        seededContacts: load.seeded,
        settings: BULK_SETTINGS,
        pause: bulk.pause,
        allRunCrossed: crossed,
        runs: bulkRuns.map((r) => bulkRunFigures(r, loadStarted)),
        reconciliation: bulkRunFigures(reconciliation, loadStarted),
        problems: bulkProblems.slice(0, 20),
      },
      faultsServed: { total: crm.faultsServed, ...crm.faultsByKind },
      outage: outageFigures(schedule.outage, rate),
      restarts: {
        workerSigkills: workerKills,
        workerUnexpectedExits: stack.worker.unexpectedExits,
        temporalSigkills: schedule.events.filter((e) => e.what === 'temporal SIGKILL').length,
        postgresRestarts: schedule.events.filter((e) => e.what === 'postgres restart').length,
      },
      retryFailed: retried,
      drain: {
        afterFaultsMs: drained.ms,
        afterRetryMs: drainedAgain.ms,
        quiet: drained.quiet && drainedAgain.quiet,
        left: drainedAgain.last,
      },
      verification: { ...verdict.detail, repeatedWriteExamples: verdict.repeated.slice(0, 10) },
      events: schedule.events,
      seed: options.seed,
      minutes: options.minutes,
      loadMs,
      runMs: Date.now() - began,
    };
  } finally {
    await cleanups.run(log);
    if (folder && passed && !options.keep) await rm(folder, { recursive: true, force: true });
    else if (folder) log(`kept ${folder} (data and logs of this run)`);
  }
}
