/**
 * The page loop of a bulk export run: plans page boundaries a few pages ahead (a cheap activity;
 * the first run's first pages come planned with `bulkBegin`'s count), keeps up to `parallelism`
 * page activities in flight, and moves the cursor past a page only when every page before it has
 * finished too, so a run that stops (continue-as-new, a crash replayed by Temporal) resumes with
 * nothing skipped and nothing doubled. Each page waits out transient failures and an open breaker
 * like a per-entity write (`retry-window.ts`), against one outage clock for the whole export: once
 * the remote has failed for the retry window, pages give up.
 */
import { condition, proxyActivities, workflowInfo } from '@temporalio/workflow';
// Only import the activity types: workflow code must stay free of I/O.
import type { ExportActivities } from '../activities';
import type { BulkPageOutput, BulkPageRange, BulkRunRef } from '../activities/bulk-types';
import type { ExecutionCounters, RecordFailure } from '../activities/types';
import type { PagePlan } from '../connectors/connector';
import type { EntityId } from '../entity-id';
import type { BulkExportInput, BulkPosition } from './bulk-definitions';
import { BULK_PAGE_ACTIVITY_OPTIONS, BULK_PLAN_ACTIVITY_OPTIONS, BULK_PLAN_AHEAD } from './options';
import { gaveUpReason, retryWithinWindow } from './retry-window';

const pages = proxyActivities<ExportActivities>(BULK_PAGE_ACTIVITY_OPTIONS);
const planning = proxyActivities<ExportActivities>(BULK_PLAN_ACTIVITY_OPTIONS);

/** Failures a bulk export keeps in its state and result (every one is a `failed` record anyway). */
export const BULK_FAILURES_KEPT = 50;

/** How a run of the page loop ended. */
export type PageLoopEnd = 'done' | 'continue' | 'cancelled';

/** What the page loop reads and moves; owned by the workflow. */
export interface PageLoopState {
  position: BulkPosition;
  counters: ExecutionCounters;
  done: number;
  pages: number;
  failures: RecordFailure[];
  /** Bumped whenever something the loop waits on changes (a page ends, pause, resume, cancel). */
  events: number;
  paused: boolean;
  cancelled: string | null;
}

/** What the page loop tells the workflow as it goes. */
export interface PageLoopHooks {
  /** A page finished (counters already added). */
  pageDone(): void;
  /** A page failed transiently and waits (`retrying`), or one went through again (`running`). */
  retrying(active: boolean): void;
  /** The loop waits, paused. */
  pausedNow(): Promise<void>;
}

interface Page {
  readonly seq: number;
  readonly range: BulkPageRange;
  /** The position after this page. */
  readonly after: BulkPosition;
  /** Rows this page goes through when it is a slice of ids (keyset pages count what they read). */
  readonly size: number | null;
}

/** Runs pages until the scope is done, the run should continue as new, or the export is cancelled. */
export async function runPageLoop(
  input: BulkExportInput & { readonly pagesPerRun: number },
  ref: BulkRunRef,
  retry: { retryWindowMs: number; probeIntervalMs: number },
  state: PageLoopState,
  hooks: PageLoopHooks,
  startedAt: number,
  /** Pages of a keyset scope planned already, from the start of the scope (`bulkBegin`'s `firstPages`). */
  firstPlan?: PagePlan,
): Promise<PageLoopEnd> {
  const planned: Page[] = [];
  let planEnd = false;
  let planFrom: BulkPosition = state.position;
  let seq = 0;
  const filter = 'filter' in input.scope ? input.scope.filter : undefined;

  const addPlanned = (after: EntityId | null, next: PagePlan) => {
    let from = after;
    for (const upTo of next.boundaries) {
      planned.push({
        seq: seq++,
        range: { after: from, upTo, ...(filter !== undefined ? { filter } : {}) },
        after: { after: upTo },
        size: null,
      });
      from = upTo;
    }
    planFrom = { after: from };
    planEnd = next.end || next.boundaries.length === 0;
  };
  if (firstPlan && 'after' in planFrom && planFrom.after === null) addPlanned(null, firstPlan);
  let nextToSettle = 0;
  const finished = new Map<number, Page>();
  let inFlight = 0;
  let started = 0;
  let failure: unknown = null;
  let outageSince: number | null = null;
  let retryingPages = 0;

  const plan = async (): Promise<void> => {
    if ('ids' in input.scope) {
      const from = 'index' in planFrom ? planFrom.index : 0;
      for (let i = 0; i < input.parallelism * BULK_PLAN_AHEAD && from + i * input.pageSize < input.scope.ids.length; i++) {
        const start = from + i * input.pageSize;
        const ids = input.scope.ids.slice(start, start + input.pageSize);
        planned.push({ seq: seq++, range: { ids }, after: { index: start + ids.length }, size: ids.length });
      }
      const last = planned[planned.length - 1];
      if (last) planFrom = last.after;
      planEnd = planned.length === 0 || (last !== undefined && 'index' in last.after && last.after.index >= input.scope.ids.length);
      return;
    }
    const after = 'after' in planFrom ? planFrom.after : null;
    const next = await planning.bulkPlan({
      ...ref,
      after,
      filter,
      pageSize: input.pageSize,
      pages: input.parallelism * BULK_PLAN_AHEAD,
    });
    addPlanned(after, next);
  };

  const runPage = async (page: Page): Promise<BulkPageOutput> => {
    let firstFailure: number | null = null;
    let waited = false;
    const output = await retryWithinWindow({
      attempt: (gate) => pages.bulkPage({ ...ref, mode: input.mode, startedAt, page: page.range, gate }),
      giveUp: (last) =>
        pages.bulkPage({
          ...ref,
          mode: input.mode,
          startedAt,
          page: page.range,
          giveUp: { error: gaveUpReason(retry, last), attempts: last.attempts },
        }),
      integration: ref.integration,
      integrationId: ref.integrationId,
      retry,
      // One outage clock for the export: a page that fails later does not start a new window.
      windowEndsAt: () => Math.min(firstFailure ?? Date.now(), outageSince ?? Infinity) + retry.retryWindowMs,
      onFailure: () => {
        firstFailure ??= Date.now();
        outageSince ??= Date.now();
      },
      onRetrying: () => {
        waited = true;
        retryingPages += 1;
        hooks.retrying(true);
      },
      label: `page ${page.seq + 1}`,
    });
    outageSince = null;
    if (waited && --retryingPages === 0) hooks.retrying(false);
    return output;
  };

  const settle = (page: Page, output: BulkPageOutput) => {
    for (const key of Object.keys(state.counters) as Array<keyof ExecutionCounters>) state.counters[key] += output.counters[key];
    state.done += page.size ?? output.counters.read;
    state.pages += 1;
    for (const f of output.failures) if (state.failures.length < BULK_FAILURES_KEPT) state.failures.push(f);
    finished.set(page.seq, page);
    // The cursor moves past a page only once every page before it has finished too.
    for (let next = finished.get(nextToSettle); next; next = finished.get(nextToSettle)) {
      state.position = next.after;
      finished.delete(nextToSettle);
      nextToSettle += 1;
    }
    hooks.pageDone();
  };

  for (;;) {
    if (failure !== null) throw failure;
    const mayStart = !state.paused && state.cancelled === null && started < input.pagesPerRun && !workflowInfo().continueAsNewSuggested;
    if (mayStart && inFlight < input.parallelism) {
      if (planned.length === 0 && !planEnd) {
        await plan();
        continue;
      }
      const page = planned.shift();
      if (page) {
        inFlight += 1;
        started += 1;
        void runPage(page)
          .then(
            (output) => settle(page, output),
            (err: unknown) => void (failure ??= err),
          )
          .finally(() => {
            inFlight -= 1;
            state.events += 1;
          });
        continue;
      }
    }
    if (inFlight === 0) {
      if (state.cancelled !== null) return 'cancelled';
      if (planned.length === 0 && planEnd) return 'done';
      if (state.paused) {
        await hooks.pausedNow();
        continue;
      }
      return 'continue';
    }
    const seen = state.events;
    await condition(() => state.events !== seen);
  }
}
