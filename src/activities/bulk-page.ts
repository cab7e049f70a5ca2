/**
 * One page of a bulk export, as one activity: read the page (one query: a keyset range of the
 * first step's table, or a list of ids), load the page's sync states (one query), then, a part of
 * up to `BULK_LOCKED_ROWS` rows at a time, run the processor per entity, skip what is unchanged
 * (mode `changed`) and write the changes: with `writeBatch` when the writer has one, under their
 * entities' locks (one lock scope a part, sent in batches of the writer's `maxBatchSize`, their
 * sync states saved in one statement); else one record at a time, a few at once. Only counters,
 * the page's last id and a few failures go back into history.
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
import { BULK_LOCKED_ROWS, type PageChange, writeChunkLocked } from './batch-write';
import type { BulkPageInput, BulkPageOutput } from './bulk-types';
import { RETRY_WINDOW_EXHAUSTED } from './failure-activities';
import { type LockedWriteContext, type RecordOutcome, writeOneLocked } from './locked-write';
import { deletesByKey, planChanges } from './process-step';
import type { ExecutionCounters, RecordFailure } from './types';
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
  readonly found: ReadResult['found'];
  readonly missing: readonly string[];
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
    const fail = (failure: RecordFailure) => {
      counters.failed += 1;
      if (failures.length < BULK_FAILURES_PER_PAGE) failures.push(failure);
    };
    let page: PageItems | undefined;
    for (const [index, step] of job.steps.entries()) {
      const session = await openWriteSession(runtime, resolveSecret, metrics, {
        ...input,
        step: step.name,
        gate: index === 0 ? input.gate : undefined,
      });
      const items: PageItems = page ? await readByIds(runtime, step, page) : await readPage(runtime, step, input);
      if (!page) {
        page = items;
        counters.read = items.found.length;
      }
      const scope = { integrationId: input.integrationId, connector: input.connector };
      const states = await loadSyncStates(runtime.store, scope, [...items.found.map((f) => f.key), ...items.missing]);
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
      const processor = runtime.services.get('processor', step.processor);
      const created: Array<{ key: string; remoteId: string }> = [];
      // Planned and written a lock scope's rows at a time: the first batch goes out once 500 rows
      // are planned rather than the whole page, and the worker plans the next part while the
      // remote takes the last (each page's parts alternate between the worker's CPU and the remote).
      for (const part of pageParts(items)) {
        const planned = await planChanges(
          { ...scope, items: part.found.map((f) => ({ key: f.key, entity: f.entity })), missing: part.missing },
          step,
          session.integration,
          processor,
          states,
          plan,
        );
        if (index === 0) counters.processed += part.found.length - planned.failures.length;
        // A retried page finds what an earlier attempt wrote (its answer lost with a killed worker)
        // unchanged: it counts as written, as the per-entity path counts it.
        const writtenBefore =
          ctx.info.attempt > 1 ? planned.skipped.filter((s) => syncedSince(states.get(s.key), ctx.info.scheduledTimestampMs)).length : 0;
        counters.written += writtenBefore;
        counters.skipped += planned.skipped.length - writtenBefore + planned.notFound.length;
        for (const failure of planned.failures) {
          await saveFailed(runtime.store, scope, { key: failure.key, error: failure.message, attempts: 0 });
          fail(failure);
        }
        await resolveFailedNeverExported(
          runtime.store,
          scope,
          planned.notFound.filter((key) => states.get(key)?.status === 'failed'),
        );
        if (input.giveUp) {
          // The retry window ran out: keep each change as `failed`, unless it was written after all.
          for (const change of planned.changes) {
            const error = input.giveUp.error;
            const marked = await saveFailed(runtime.store, scope, {
              key: change.key,
              error,
              attempts: input.giveUp.attempts,
              hash: change.hash,
            });
            if (marked) fail({ key: change.key, step: step.name, code: RETRY_WINDOW_EXHAUSTED, message: error });
            else counters.skipped += 1;
          }
          continue;
        }
        const found = new Map(part.found.map((f) => [f.key, f]));
        const changes: PageChange[] = planned.changes.map((change) => {
          const item = found.get(change.key);
          if (!item) return { id: parseEntityId(change.key), change };
          return { id: item.id, change, from: { entity: item.entity, state: states.get(change.key) } };
        });
        for (const outcome of await writeChanges(locked, changes)) {
          if (outcome.kind === 'failed') fail(outcome.failure);
          else if (outcome.kind === 'skipped') counters.skipped += 1;
          else if (outcome.record.operation === 'tombstone') counters.skipped += 1;
          else {
            counters.written += 1;
            if (outcome.record.operation === 'create' && outcome.record.remoteId) {
              created.push({ key: outcome.record.key, remoteId: outcome.record.remoteId });
            }
          }
        }
      }
      if (step.writeBack && created.length > 0) await writeBackRemoteIds(runtime.app, step, created);
    }
    return { counters, lastId: lastIdOf(input, page), failures };
  } finally {
    clearInterval(beat);
  }
}

/**
 * Writes the changes of one part of a page (at most `BULK_LOCKED_ROWS`, see `pageParts`): under
 * one lock scope with `writeBatch` (see `batch-write.ts`), else a few records at once.
 */
async function writeChanges(ctx: LockedWriteContext, changes: readonly PageChange[]): Promise<RecordOutcome[]> {
  if (ctx.write.writer.writeBatch) return [...(await writeChunkLocked(ctx, changes)).values()];
  const outcomes: RecordOutcome[] = [];
  let next = 0;
  const worker = async () => {
    while (next < changes.length) {
      const { id, change } = changes[next++] as PageChange;
      outcomes.push(await writeOneLocked(ctx, change, id));
    }
  };
  await Promise.all(Array.from({ length: Math.min(BULK_RECORD_CONCURRENCY, changes.length) }, worker));
  return outcomes;
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
async function readPage(runtime: Runtime, step: StepDefinition, input: BulkPageInput): Promise<PageItems> {
  const reader = runtime.services.get('reader', step.reader);
  if ('ids' in input.page) return reader.read(input.page.ids, step.parameters);
  if (!reader.readRange) {
    throw new ConfigurationError(`reader '${step.reader}' of step '${step.name}' cannot read a range of rows: export by ids instead`);
  }
  return { found: await reader.readRange(input.page, step.parameters), missing: [] };
}

/** Later steps read the page's entities by id with their own readers. */
async function readByIds(runtime: Runtime, step: StepDefinition, page: PageItems): Promise<PageItems> {
  const ids = [...page.found.map((f) => f.id), ...page.missing.map((key) => parseEntityId(key))];
  return runtime.services.get('reader', step.reader).read(ids, step.parameters);
}

/** True when the entity's sync state was saved at or after `sinceMs` (and holds it as on the remote). */
function syncedSince(state: SyncState | undefined, sinceMs: number): boolean {
  return state?.status === 'active' && state.lastSyncedAt !== null && state.lastSyncedAt.getTime() >= sinceMs;
}

function lastIdOf(input: BulkPageInput, page: PageItems | undefined): EntityId | null {
  if ('ids' in input.page) return input.page.ids[input.page.ids.length - 1] ?? null;
  const last = page?.found[page.found.length - 1] as { id: EntityId; entity: Entity } | undefined;
  return input.page.upTo ?? last?.id ?? input.page.after;
}
