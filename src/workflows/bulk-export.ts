/**
 * The bulk export workflow: one per (integration, connector) run, id
 * `bulk/<integration>/<connector>/<timestamp or given id>`. It goes through the rows in scope page
 * by page (`bulk-pages.ts`), keeping only the cursor and counters in its state, continues as new
 * every `pagesPerRun` pages so its history stays bounded, answers `progress`, and can be paused,
 * resumed and cancelled with updates. One execution record in `tidesync.job_execution` follows it.
 */
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
// Only import the activity types: workflow code must stay free of I/O.
import type { ExportActivities } from '../activities';
import type { BulkBeginOutput, BulkRunRef } from '../activities/bulk-types';
import type { ExecutionStatus } from '../store/schema';
import { STATUS_ATTRIBUTE } from '../search-attributes';
import { formatDuration } from '../retry-policy';
import {
  type BulkExportInput,
  type BulkExportResult,
  type BulkProgress,
  type BulkState,
  cancelUpdate,
  pauseUpdate,
  progressQuery,
  resumeUpdate,
} from './bulk-definitions';
import { type PageLoopState, runPageLoop } from './bulk-pages';
import {
  BOOKKEEPING_ACTIVITY_OPTIONS,
  BULK_PAGES_PER_RUN,
  BULK_PLAN_ACTIVITY_OPTIONS,
  BULK_PLAN_AHEAD,
  LOCAL_BULK_BEGIN_OPTIONS,
  fitPageSize,
} from './options';

const planning = proxyActivities<ExportActivities>(BULK_PLAN_ACTIVITY_OPTIONS);
const localPlanning = proxyLocalActivities<ExportActivities>(LOCAL_BULK_BEGIN_OPTIONS);
// The execution record is bookkeeping in our own database: a local activity, one marker event.
const bookkeeping = proxyLocalActivities<ExportActivities>(BOOKKEEPING_ACTIVITY_OPTIONS);

/**
 * The marker of bulk exports whose first run begins (`bulkBegin`: check, count, plan the first
 * pages, open the execution record) with a local activity, in the workflow task that then starts
 * the first pages: one workflow task and one activity task less before the first page, and a
 * marker instead of six events. Runs recorded before it replay with their activity.
 */
export const BULK_LOCAL_BEGIN_PATCH = 'bulk-local-begin';

/** Exports the rows in scope of one connector to one integration, page by page. */
export async function bulkExport(input: BulkExportInput): Promise<BulkExportResult> {
  const info = workflowInfo();
  let status: BulkProgress['status'] = 'running';
  let shownStatus: string | null = input.state ? null : 'scheduled';
  const show = (next: BulkProgress['status']) => {
    status = next;
    if (shownStatus === next) return;
    shownStatus = next;
    upsertSearchAttributes([{ key: STATUS_ATTRIBUTE, value: next }]);
  };

  const begun = input.state;
  const loop: PageLoopState = {
    position: begun?.position ?? ('ids' in input.scope ? { index: 0 } : { after: null }),
    counters: begun ? { ...begun.counters } : { read: 0, processed: 0, written: 0, skipped: 0, failed: 0 },
    done: begun?.done ?? 0,
    pages: begun?.pages ?? 0,
    failures: [...(begun?.failures ?? [])],
    events: 0,
    paused: begun?.paused ?? false,
    cancelled: null,
  };
  let total = begun?.total ?? 0;
  let activeMs = begun?.activeMs ?? 0;
  let activeSince = Date.now();
  const startedAt = begun?.startedAt ?? Date.now();
  const runs = (begun?.runs ?? 0) + 1;

  const elapsed = () => activeMs + (loop.paused ? 0 : Date.now() - activeSince);
  const progress = (): BulkProgress => {
    const seconds = elapsed() / 1000;
    const rate = seconds > 0 ? loop.done / seconds : 0;
    return {
      status: loop.cancelled !== null && status === 'running' ? 'cancelling' : status,
      mode: input.mode,
      done: loop.done,
      total: Math.max(total, loop.done),
      written: loop.counters.written,
      skipped: loop.counters.skipped,
      failed: loop.counters.failed,
      pages: loop.pages,
      rate: Math.round(rate * 10) / 10,
      etaSeconds: rate > 0 ? Math.round(Math.max(total - loop.done, 0) / rate) : null,
      startedAt: new Date(startedAt).toISOString(),
      runs,
    };
  };
  const describe = () => {
    const p = progress();
    const percent = p.total > 0 ? ` (${Math.floor((100 * p.done) / p.total)}%)` : '';
    setCurrentDetails(
      `**${p.status}**: ${p.done} of ${p.total} rows${percent}; written ${p.written}, skipped ${p.skipped}, failed ${p.failed}; ` +
        `${p.rate}/s${p.etaSeconds !== null ? `, about ${formatDuration(p.etaSeconds * 1000)} left` : ''}`,
    );
  };
  const setPaused = (paused: boolean) => {
    if (loop.paused === paused || loop.cancelled !== null) return;
    if (paused) activeMs += Date.now() - activeSince;
    else activeSince = Date.now();
    loop.paused = paused;
    loop.events += 1;
  };
  setHandler(progressQuery, progress);
  setHandler(pauseUpdate, () => {
    setPaused(true);
    return progress();
  });
  setHandler(resumeUpdate, () => {
    setPaused(false);
    if (status === 'paused') show('running');
    describe();
    return progress();
  });
  setHandler(cancelUpdate, (reason: string | null) => {
    setPaused(false);
    loop.cancelled ??= reason ?? 'cancelled on request';
    loop.events += 1;
    return progress();
  });

  const run = { job: input.job, integration: input.integration, connector: input.connector };
  let base: Pick<BulkState, 'executionRunId' | 'integrationId' | 'retry'> | null = input.state ?? null;
  const record = (recordStatus: ExecutionStatus, error: string | null, finished: boolean) =>
    bookkeeping.bulkRecord({
      runId: base?.executionRunId ?? info.runId,
      status: recordStatus,
      counters: loop.counters,
      failures: loop.failures,
      warnings: loop.cancelled !== null ? [loop.cancelled] : [],
      error,
      finished,
    });
  const finish = async (final: ExecutionStatus, error: string | null): Promise<BulkExportResult> => {
    await record(final, error, true);
    show(final);
    describe();
    const { counters, failures, pages } = loop;
    return {
      status: final,
      mode: input.mode,
      done: loop.done,
      counters,
      total,
      pages,
      runs,
      failures,
      durationMs: Date.now() - startedAt,
      activeMs: elapsed(),
      error,
    };
  };

  const { fitPageSize: fit, ...fixed } = input;
  let firstPages: BulkBeginOutput['firstPages'];
  if (!base) {
    const begin = patched(BULK_LOCAL_BEGIN_PATCH) ? localPlanning.bulkBegin : planning.bulkBegin;
    const begun = await begin({
      ...run,
      workflowId: info.workflowId,
      runId: info.runId,
      scope: input.scope,
      mode: input.mode,
      // The first pages are planned with the count: one round trip less before the first page.
      planFirst: {
        pageSize: input.pageSize,
        fit: fit === true,
        parallelism: input.parallelism,
        pages: input.parallelism * BULK_PLAN_AHEAD,
      },
    });
    total = begun.total;
    base = { executionRunId: info.runId, integrationId: begun.integrationId, retry: begun.retry };
    if (begun.refusal) return finish('failed', begun.refusal);
    // Absent from answers of workers from before `planFirst`: those plan in the loop, as they did.
    firstPages = begun.firstPages;
  }
  const state = base;
  // A page size left to us is fitted to the rows counted, once; later runs keep the fitted size.
  const pageSize = firstPages?.pageSize ?? (fit ? fitPageSize(total, input.parallelism, input.pageSize) : input.pageSize);
  const paged: BulkExportInput = { ...fixed, pageSize };
  const ref: BulkRunRef = { ...run, integrationId: state.integrationId, bulkId: info.workflowId };

  show(loop.paused ? 'paused' : 'running');
  describe();
  let end;
  try {
    end = await runPageLoop(
      { ...paged, pagesPerRun: paged.pagesPerRun ?? BULK_PAGES_PER_RUN },
      ref,
      state.retry,
      loop,
      {
        pageDone: describe,
        retrying: (active) => show(active ? 'retrying' : 'running'),
        pausedNow: async () => {
          show('paused');
          describe();
          await condition(() => !loop.paused || loop.cancelled !== null);
          if (loop.cancelled === null) show('running');
        },
      },
      startedAt,
      firstPages?.plan,
    );
  } catch (err) {
    if (isCancellation(err)) {
      // Cancelled through Temporal: record what was done, then end as cancelled.
      await CancellationScope.nonCancellable(() => finish('cancelled', 'the workflow was cancelled'));
      throw err;
    }
    const message = err instanceof Error ? err.message : String(err);
    await finish('failed', message);
    throw ApplicationFailure.create({ message: `bulk export failed: ${message}`, type: 'BulkExportFailed', nonRetryable: true });
  }

  if (end === 'continue') {
    await record('running', null, false);
    const next: BulkState = {
      ...state,
      total,
      startedAt,
      position: loop.position,
      counters: loop.counters,
      done: loop.done,
      pages: loop.pages,
      failures: loop.failures,
      activeMs: elapsed(),
      paused: loop.paused,
      runs,
    };
    // A fresh history for the next pages; the cursor and counters carry over.
    return continueAsNew<typeof bulkExport>({ ...paged, state: next });
  }
  if (end === 'cancelled') return finish('cancelled', null);
  return finish(loop.counters.failed > 0 ? 'completed_with_failures' : 'completed', null);
}
