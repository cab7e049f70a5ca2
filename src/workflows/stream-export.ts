/**
 * A connector's change stream: one workflow per (integration, connector), `stream/<integration>/
 * <connector>`, fed by the outbox relay with one signal per batch of changed entities. It runs
 * passes of many entities at once (one activity each, as a bulk export's page: one read query for
 * the batch, one sync-state query, the writes under each entity's lock) with a few in flight, so
 * a change costs a fraction of a workflow instead of a workflow of its own. The coalescing rules
 * of the per-entity export hold per entity (see `stream-state.ts`); the run's `TidesyncEntityIds`
 * lists every entity it exported, and each pass keeps a job execution record naming its
 * entities. The run ends after a quiet spell, and continues as new before its history or its
 * entity list grows large, carrying what still waits.
 */
import {
  condition,
  continueAsNew,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
// Only import the activity types: workflow code must stay free of I/O.
import type { ExportActivities } from '../activities';
import type { StreamSettings } from '../activities/stream-pass';
import type { ExecutionCounters } from '../activities/types';
import { encodeEntityId, type EntityId } from '../entity-id';
import { ENTITY_IDS_ATTRIBUTE, STATUS_ATTRIBUTE } from '../search-attributes';
import { BOOKKEEPING_ACTIVITY_OPTIONS, FOLLOW_UP_MAX_WAIT_MS, FOLLOW_UP_QUIET_PERIOD_MS, STREAM_PASS_ACTIVITY_OPTIONS } from './options';
import { gaveUpReason, retryWithinWindow } from './retry-window';
import { streamChangesSignal, streamStatusQuery } from './signals';
import { type PendingChange, StreamState } from './stream-state';

/** Passes of one stream in flight at once. */
export const STREAM_PARALLELISM = 4;

/** Entities in one pass at most. */
export const STREAM_BATCH_SIZE = 100;

/** A stream with nothing to do for this long ends (the next change starts a new run). */
export const STREAM_IDLE_MS = 5_000;

/** Passes one run makes before it continues as new; about 10 history events each. */
export const STREAM_PASSES_PER_RUN = 200;

/**
 * Bytes of the run's `TidesyncEntityIds` list (its JSON) at most: Temporal refuses a search
 * attribute value over 2 KiB by default, so a run continues as new before its list would.
 */
export const STREAM_ENTITY_IDS_BUDGET = 1_800;

// A pass is one (regular) activity: a workflow task is never held open while a pass writes, so
// new changes are taken in, and new passes started, while others are in flight.
const passes = proxyActivities<ExportActivities>(STREAM_PASS_ACTIVITY_OPTIONS);
const bookkeeping = proxyLocalActivities<ExportActivities>(BOOKKEEPING_ACTIVITY_OPTIONS);

/** Input of a stream run. Holds names and ids only: never a secret, never entity data. */
export interface StreamInput {
  readonly integration: string;
  readonly connector: string;
  /** The connector's export job. */
  readonly job: string;
  /** Changes an earlier run of the stream had not exported yet (continue-as-new). */
  readonly pending?: readonly PendingChange[];
  /** Entities an earlier run wrote less than the quiet period ago: key -> when (workflow time). */
  readonly recent?: ReadonlyArray<readonly [string, number]>;
  /** Passes before the run continues as new; default `STREAM_PASSES_PER_RUN`. */
  readonly maxPassesPerRun?: number;
}

/** What a stream run returns when it ends after a quiet spell. */
export interface StreamResult {
  readonly passes: number;
  readonly entities: number;
  readonly counters: ExecutionCounters;
  /** Passes whose job failed (see their execution records). */
  readonly failedPasses: number;
}

/** Runs a connector's change stream until it is quiet (see the module comment). */
export async function streamExport(input: StreamInput): Promise<StreamResult> {
  const state = new StreamState({ quietMs: FOLLOW_UP_QUIET_PERIOD_MS, maxWaitMs: FOLLOW_UP_MAX_WAIT_MS }, input.pending, input.recent);
  // Bumped by every change and every finished pass: what the loop below waits for.
  let tick = 0;
  setHandler(streamChangesSignal, ({ ids }) => {
    const now = Date.now();
    for (const id of ids) state.changed(encodeEntityId(id), id, now);
    tick += 1;
  });

  const counters: ExecutionCounters = { read: 0, processed: 0, written: 0, skipped: 0, failed: 0 };
  const exported = new Set<string>();
  let listBytes = 2;
  let passCount = 0;
  let running = 0;
  let failedPasses = 0;
  let retrying = 0;
  const maxPasses = input.maxPassesPerRun ?? STREAM_PASSES_PER_RUN;
  setHandler(streamStatusQuery, () => ({
    pending: state.pendingCount,
    inFlight: state.inFlightCount,
    passes: passCount,
    entities: exported.size,
    written: counters.written,
    skipped: counters.skipped,
    failed: counters.failed,
  }));

  const ref = { job: input.job, integration: input.integration, connector: input.connector };
  const settings: StreamSettings = await bookkeeping.streamBegin(ref);

  /** One pass, waiting out transient failures and an open breaker for the integration's retry window. */
  const runStreamPass = (ids: readonly EntityId[], pass: number) => {
    let firstFailure: number | null = null;
    let waited = false;
    return retryWithinWindow({
      attempt: (gate) => passes.streamPass({ ...ref, ids, pass, gate }),
      giveUp: (last) =>
        passes.streamPass({ ...ref, ids, pass, giveUp: { error: gaveUpReason(settings.retry, last), attempts: last.attempts } }),
      integration: input.integration,
      integrationId: settings.integrationId,
      retry: settings.retry,
      windowEndsAt: () => (firstFailure ?? Date.now()) + settings.retry.retryWindowMs,
      onFailure: () => void (firstFailure ??= Date.now()),
      onRetrying: () => {
        waited = true;
        if (retrying++ === 0) upsertSearchAttributes([{ key: STATUS_ATTRIBUTE, value: 'retrying' }]);
      },
      label: `pass ${pass}`,
    }).finally(() => {
      if (waited && --retrying === 0) upsertSearchAttributes([{ key: STATUS_ATTRIBUTE, value: 'running' }]);
    });
  };

  const startPass = (batch: readonly PendingChange[]) => {
    passCount += 1;
    running += 1;
    const keys = batch.map((c) => c.key);
    for (const key of keys) exported.add(key);
    upsertSearchAttributes([{ key: ENTITY_IDS_ATTRIBUTE, value: [...exported] }]);
    void runStreamPass(
      batch.map((c) => c.id),
      passCount,
    )
      .then(
        (output) => {
          for (const key of Object.keys(counters) as Array<keyof ExecutionCounters>) counters[key] += output.counters[key];
        },
        // A configuration error (its record says why) or a refusal the window cannot cure.
        () => void (failedPasses += 1),
      )
      .finally(() => {
        running -= 1;
        state.done(keys, Date.now());
        tick += 1;
        setCurrentDetails(
          `${passCount} passes, ${exported.size} entities; written ${counters.written}, skipped ${counters.skipped}, failed ${counters.failed}`,
        );
      });
  };

  upsertSearchAttributes([{ key: STATUS_ATTRIBUTE, value: 'running' }]);
  for (;;) {
    let full = passCount >= maxPasses || workflowInfo().continueAsNewSuggested;
    while (!full && running < STREAM_PARALLELISM) {
      // Take what may start now and still fits the run's entity list.
      let bytes = listBytes;
      const batch = state.take(Date.now(), STREAM_BATCH_SIZE, (key) => {
        if (exported.has(key)) return true;
        const next = bytes + JSON.stringify(key).length + 1;
        if (next > STREAM_ENTITY_IDS_BUDGET) return false;
        bytes = next;
        return true;
      });
      if (batch.length === 0) {
        // Something may start now but does not fit this run's list: the next run takes it.
        full = state.nextReadyInMs(Date.now()) === 0;
        break;
      }
      listBytes = bytes;
      startPass(batch);
    }
    if (full && running === 0) {
      // Keep the history and the entity list small: a new run takes over what still waits.
      const carried = state.snapshot(Date.now());
      await continueAsNew<typeof streamExport>({ ...input, pending: carried.pending, recent: carried.recent });
    }
    const seen = tick;
    if (running === 0 && state.pendingCount === 0) {
      // Quiet: end after the idle spell unless a change arrives.
      if (!(await condition(() => tick !== seen, STREAM_IDLE_MS)) && state.pendingCount === 0) break;
      continue;
    }
    const next = full ? null : state.nextReadyInMs(Date.now());
    // A free lane and something ready only later: wake then; otherwise on the next change or pass.
    if (next !== null && next > 0 && running < STREAM_PARALLELISM) await condition(() => tick !== seen, next);
    else await condition(() => tick !== seen);
  }
  const status = failedPasses > 0 ? 'failed' : counters.failed > 0 ? 'completed_with_failures' : 'completed';
  upsertSearchAttributes([{ key: STATUS_ATTRIBUTE, value: status }]);
  return { passes: passCount, entities: exported.size, counters, failedPasses };
}
