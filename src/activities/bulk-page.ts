/**
 * One page of a bulk export, as one activity: read the page (one query: a keyset range of the
 * first step's table, or a list of ids), then a part of up to `BULK_LOCKED_ROWS` rows at a time:
 * with `writeBatch`, take the part's locks, read its rows and sync states again under them, run
 * the processor per entity, skip what is unchanged (mode `changed`) and write the changes in
 * batches of the writer's `maxBatchSize`, their sync states saved in one statement; without it,
 * plan from the page's rows and sync states and write one record at a time under its own lock, a
 * few at once. Only counters, the page's last id and a few failures go back into history.
 */
import { Context } from '@temporalio/activity';
import type { Entity, ReadResult, SyncState } from '../connectors/connector';
import { type EntityId, parseEntityId } from '../entity-id';
import { ConfigurationError } from '../errors';
import type { StepDefinition } from '../jobs/definition';
import type { TidesyncMetrics } from '../metrics/metrics';
import { type Runtime, getJob } from '../runtime';
import type { SecretResolver } from '../secrets';
import { resolveFailedNeverExported, saveFailed } from '../store/failures';
import { loadSyncStates } from '../store/sync-state';
import { writeBackRemoteIds } from '../store/write-back';
import { BULK_LOCKED_ROWS, writeBatchedLocked } from './batch-write';
import type { BulkPageInput, BulkPageOutput } from './bulk-types';
import { RETRY_WINDOW_EXHAUSTED } from './failure-activities';
import { type LockedWriteContext, type RecordOutcome, replan, writeOneLocked } from './locked-write';
import { deletesByKey, planChanges } from './process-step';
import type { ExecutionCounters, PlannedChange, ProcessStepOutput, RecordFailure } from './types';
import { openWriteSession } from './write-session';

/** Failures one page reports back (all are kept as `failed` records; `tidesync failures` lists them). */
export const BULK_FAILURES_PER_PAGE = 10;

/** Records written at once, one request each, by writers without `writeBatch`. */
export const BULK_RECORD_CONCURRENCY = 8;

/**
 * How often a page heartbeats, whatever it is doing (waiting for a lock, a slow batch): a worker
 * that dies mid-page is noticed after the activity's heartbeat timeout, not its whole time limit.
 */
export const BULK_HEARTBEAT_EVERY_MS = 1_000;

interface PageItems {
  readonly found: readonly PageRow[];
  readonly missing: readonly string[];
}

/**
 * A row of a page: its id and key, and the row itself where the page plans from it (writers without
 * `writeBatch`). A page that reads its rows again under their locks keeps no row: held across all
 * its parts, 2,500 rows outlived the young generation and were copied into the old one.
 */
interface PageRow {
  readonly id: EntityId;
  readonly key: string;
  readonly entity?: Entity;
}

/** Runs one page; see the module comment. */
export async function runBulkPage(
  runtime: Runtime,
  resolveSecret: SecretResolver,
  metrics: TidesyncMetrics | undefined,
  input: BulkPageInput,
): Promise<BulkPageOutput> {
  const ctx = Context.current();
  const beat = setInterval(() => ctx.heartbeat(), BULK_HEARTBEAT_EVERY_MS);
  try {
    const job = getJob(runtime, input.job);
    const counters: ExecutionCounters = { read: 0, processed: 0, written: 0, skipped: 0, failed: 0 };
    const failures: RecordFailure[] = [];
    let page: PageItems | undefined;
    for (const [index, step] of job.steps.entries()) {
      const session = await openWriteSession(runtime, resolveSecret, metrics, {
        ...input,
        step: step.name,
        gate: index === 0 ? input.gate : undefined,
      });
      // With writeBatch, each part is read again under its locks: the page needs only the ids.
      const idsOnly = session.writer.writeBatch !== undefined;
      const items: PageItems = page ? await readByIds(runtime, step, page, idsOnly) : await readPage(runtime, step, input, idsOnly);
      if (!page) {
        page = items;
        counters.read = items.found.length;
      }
      const scope = { integrationId: input.integrationId, connector: input.connector };
      const deleteByKey = deletesByKey(session.writer, session.integration);
      const plan = input.mode === 'all' ? { force: { key: input.bulkId, since: new Date(input.startedAt) }, deleteByKey } : { deleteByKey };
      const run = ctx.info.workflowExecution;
      const locked: LockedWriteContext = {
        runtime,
        run: input,
        step,
        integration: session.integration,
        write: {
          db: runtime.store,
          scope,
          writer: session.writer,
          connector: session.connector,
          context: {
            integration: session.integration,
            parameters: step.parameters,
            secret: session.secret,
            signal: ctx.cancellationSignal,
          },
        },
        plan,
        attempt: ctx.info.attempt,
        workflow: run ? { workflowId: run.workflowId, runId: run.runId } : null,
      };
      const tally: PageTally = {
        counters,
        failures,
        created: [],
        firstStep: index === 0,
        // A retried page finds what an earlier attempt wrote (its answer lost with a killed worker)
        // unchanged: it counts as written, as the per-entity path counts it.
        earlierAttemptsSince: ctx.info.attempt > 1 ? ctx.info.scheduledTimestampMs : null,
        giveUp: input.giveUp,
      };
      if (session.writer.writeBatch) {
        // Planned and written a lock scope's rows at a time, under their locks (see `writePartLocked`):
        // the first batch goes out once 500 rows are planned rather than the whole page, and the
        // worker plans the next part while the remote takes the last.
        for (const part of pageParts(items)) await writePartLocked(locked, part, tally);
      } else {
        const states = await loadSyncStates(runtime.store, scope, [...items.found.map((f) => f.key), ...items.missing]);
        for (const part of pageParts(items)) await writePartByRecord(locked, part, states, tally);
      }
      if (step.writeBack && tally.created.length > 0) await writeBackRemoteIds(runtime.app, step, tally.created);
    }
    return { counters, lastId: lastIdOf(input, page), failures };
  } finally {
    clearInterval(beat);
  }
}

/** What a page counts of one step, part by part. */
interface PageTally {
  readonly counters: ExecutionCounters;
  /** The first `BULK_FAILURES_PER_PAGE` failures (all are counted, and kept as `failed` records). */
  readonly failures: RecordFailure[];
  /** Records the remote created, for the step's write-back. */
  readonly created: Array<{ key: string; remoteId: string }>;
  /** Only the first step counts what it processed (later steps go through the same rows). */
  readonly firstStep: boolean;
  /** When this page was first scheduled, on a retried attempt: what was synced since was written by an earlier attempt. */
  readonly earlierAttemptsSince: number | null;
  readonly giveUp: BulkPageInput['giveUp'];
}

function fail(tally: PageTally, failure: RecordFailure): void {
  tally.counters.failed += 1;
  if (tally.failures.length < BULK_FAILURES_PER_PAGE) tally.failures.push(failure);
}

/**
 * A part of a page for a writer with `writeBatch`: its entities' locks taken first (one lock scope
 * for the whole part), then the rows and sync states read and the changes planned under them, once,
 * and written (see `batch-write.ts`). Planning before the locks, as the per-record path does, meant
 * reading and planning every row twice, the second time under the locks: the guarantee needs only
 * the second. An unchanged row then costs its lock too, a few microseconds of a statement that
 * takes all of a part's locks at once.
 */
async function writePartLocked(ctx: LockedWriteContext, part: PageItems, tally: PageTally): Promise<void> {
  const keys = [...part.found.map((f) => f.key), ...part.missing];
  const ids = [...part.found.map((f) => f.id), ...part.missing.map((key) => parseEntityId(key))];
  await ctx.runtime.locks.withLocks(ctx.write.scope, keys, async () => {
    const { planned, states, found } = await replan(ctx, ids);
    const changes = await settlePlanned(ctx, planned, states, found, tally);
    tallyOutcomes(tally, (await writeBatchedLocked(ctx, changes, states)).values());
  });
}

/**
 * A part of a page for a writer without `writeBatch`: planned from the page's rows and sync states,
 * then each change written on its own under its entity's lock (read and planned again there, see
 * `locked-write.ts`), a few at once.
 */
async function writePartByRecord(
  ctx: LockedWriteContext,
  part: PageItems,
  states: Map<string, SyncState>,
  tally: PageTally,
): Promise<void> {
  const planned = await planChanges(
    { ...ctx.write.scope, items: part.found.map((f) => ({ key: f.key, entity: rowOf(f) })), missing: part.missing },
    ctx.step,
    ctx.integration,
    ctx.runtime.services.get('processor', ctx.step.processor),
    states,
    ctx.plan,
  );
  const changes = await settlePlanned(ctx, planned, states, part.found.length, tally);
  const ids = new Map(part.found.map((f) => [f.key, f.id]));
  const outcomes: RecordOutcome[] = [];
  let next = 0;
  const worker = async () => {
    while (next < changes.length) {
      const change = changes[next++] as PlannedChange;
      outcomes.push(await writeOneLocked(ctx, change, ids.get(change.key) ?? parseEntityId(change.key)));
    }
  };
  await Promise.all(Array.from({ length: Math.min(BULK_RECORD_CONCURRENCY, changes.length) }, worker));
  tallyOutcomes(tally, outcomes);
}

/**
 * Counts what a part's plan settled without a remote write (skips, rows not found, processor
 * failures, kept as `failed`) and returns the changes to write; none when the page's retry window
 * ran out, which keeps each change as `failed` instead (unless it was written after all).
 */
async function settlePlanned(
  ctx: LockedWriteContext,
  planned: ProcessStepOutput,
  states: ReadonlyMap<string, SyncState>,
  found: number,
  tally: PageTally,
): Promise<readonly PlannedChange[]> {
  const { db, scope } = ctx.write;
  const { counters } = tally;
  if (tally.firstStep) counters.processed += found - planned.failures.length;
  const since = tally.earlierAttemptsSince;
  const writtenBefore = since !== null ? planned.skipped.filter((s) => syncedSince(states.get(s.key), since)).length : 0;
  counters.written += writtenBefore;
  counters.skipped += planned.skipped.length - writtenBefore + planned.notFound.length;
  for (const failure of planned.failures) {
    await saveFailed(db, scope, { key: failure.key, error: failure.message, attempts: 0 });
    fail(tally, failure);
  }
  await resolveFailedNeverExported(
    db,
    scope,
    planned.notFound.filter((key) => states.get(key)?.status === 'failed'),
  );
  const giveUp = tally.giveUp;
  if (!giveUp) return planned.changes;
  for (const change of planned.changes) {
    const marked = await saveFailed(db, scope, { key: change.key, error: giveUp.error, attempts: giveUp.attempts, hash: change.hash });
    if (marked) fail(tally, { key: change.key, step: ctx.step.name, code: RETRY_WINDOW_EXHAUSTED, message: giveUp.error });
    else counters.skipped += 1;
  }
  return [];
}

function tallyOutcomes(tally: PageTally, outcomes: Iterable<RecordOutcome>): void {
  for (const outcome of outcomes) {
    if (outcome.kind === 'failed') fail(tally, outcome.failure);
    else if (outcome.kind === 'skipped') tally.counters.skipped += 1;
    else if (outcome.record.operation === 'tombstone') tally.counters.skipped += 1;
    else {
      tally.counters.written += 1;
      if (outcome.record.operation === 'create' && outcome.record.remoteId) {
        tally.created.push({ key: outcome.record.key, remoteId: outcome.record.remoteId });
      }
    }
  }
}

/** A page's rows in parts of at most `BULK_LOCKED_ROWS` (the rows not found, of an id list, in parts of their own). */
function* pageParts(items: PageItems): Generator<PageItems> {
  for (let start = 0; start < items.found.length; start += BULK_LOCKED_ROWS) {
    yield { found: items.found.slice(start, start + BULK_LOCKED_ROWS), missing: [] };
  }
  for (let start = 0; start < items.missing.length; start += BULK_LOCKED_ROWS) {
    yield { found: [], missing: items.missing.slice(start, start + BULK_LOCKED_ROWS) };
  }
}

/** The first step reads the page: a keyset range (one query), or a list of ids. */
async function readPage(runtime: Runtime, step: StepDefinition, input: BulkPageInput, idsOnly: boolean): Promise<PageItems> {
  const reader = runtime.services.get('reader', step.reader);
  if ('ids' in input.page) return kept(await reader.read(input.page.ids, step.parameters), idsOnly);
  if (!reader.readRange) {
    throw new ConfigurationError(`reader '${step.reader}' of step '${step.name}' cannot read a range of rows: export by ids instead`);
  }
  return kept({ found: await reader.readRange({ ...input.page, idsOnly }, step.parameters), missing: [] }, idsOnly);
}

/** What a page keeps of the rows it read: with `idsOnly`, their ids and keys (see `PageRow`). */
function kept(read: ReadResult, idsOnly: boolean): PageItems {
  return idsOnly ? { found: read.found.map(({ id, key }) => ({ id, key })), missing: read.missing } : read;
}

/** Later steps read the page's entities by id with their own readers. */
async function readByIds(runtime: Runtime, step: StepDefinition, page: PageItems, idsOnly: boolean): Promise<PageItems> {
  // Read again under their locks (idsOnly): the ids are the page's own, found or not.
  if (idsOnly) return { found: page.found.map(({ id, key }) => ({ id, key })), missing: page.missing };
  const ids = [...page.found.map((f) => f.id), ...page.missing.map((key) => parseEntityId(key))];
  return runtime.services.get('reader', step.reader).read(ids, step.parameters);
}

/** True when the entity's sync state was saved at or after `sinceMs` (and holds it as on the remote). */
function syncedSince(state: SyncState | undefined, sinceMs: number): boolean {
  return state?.status === 'active' && state.lastSyncedAt !== null && state.lastSyncedAt.getTime() >= sinceMs;
}

function lastIdOf(input: BulkPageInput, page: PageItems | undefined): EntityId | null {
  if ('ids' in input.page) return input.page.ids[input.page.ids.length - 1] ?? null;
  return input.page.upTo ?? page?.found.at(-1)?.id ?? input.page.after;
}

/** The row of a page that kept its rows (writers without `writeBatch` plan from them). */
function rowOf(row: PageRow): Entity {
  if (!row.entity) throw new Error(`unreachable: page row ${row.key} was read without its columns`);
  return row.entity;
}
