/**
 * The baseline of the bulk benchmark: what a bulk export does to the rows, in a plain loop. It
 * plans keyset pages with the reader as the workflow does, reads each page in one query, runs the
 * processor on every row and writes the changes with the writer's `writeBatch` in chunks of its
 * `maxBatchSize`, and writes the remote ids of the created records back into their rows as the
 * job's `write_back` says (one statement a page, as the export does), with the same page size and
 * pages in flight. So both end with the same remote and the same local table. Nothing else: no Temporal, no
 * sync state read or saved, no lock, no idempotency key that survives a crash, no retry. It keeps
 * none of the guarantees, which is exactly what the comparison prices.
 */
import { performance } from 'node:perf_hooks';
import { BULK_PLAN_AHEAD, type Change, type EntityId, type Integration, type Runtime, resolveSecret, writeBackRemoteIds } from 'tidesync';

/** Options of `runDirectBulk`. */
export interface DirectBulkOptions {
  readonly runtime: Runtime;
  readonly integration: Integration;
  readonly connector: string;
  readonly pageSize: number;
  readonly parallelism: number;
  /** Makes this run's idempotency keys its own (the remote remembers keys across runs). */
  readonly runKey: string;
}

/** What the loop did; times in ms from its start. */
export interface DirectBulkResult {
  readonly read: number;
  readonly written: number;
  readonly skipped: number;
  readonly failed: number;
  readonly pages: number;
  readonly ms: number;
  /** When the first batch was answered (an upper bound of the first remote write). */
  readonly firstWriteMs: number | null;
}

interface Range {
  readonly after: EntityId | null;
  readonly upTo: EntityId | null;
}

/** Runs the loop over every row of the connector's table. */
export async function runDirectBulk(options: DirectBulkOptions): Promise<DirectBulkResult> {
  const { runtime, integration, connector, pageSize, parallelism, runKey } = options;
  const job = runtime.jobs.get(runtime.connectors.exportWorkflowType(integration.type, connector));
  const step = job?.steps[0];
  if (!job || !step) throw new Error(`connector '${connector}' has no export job with a step`);
  const reader = runtime.services.get('reader', step.reader);
  const processor = runtime.services.get('processor', step.processor);
  const writer = runtime.services.get('writer', step.writer);
  if (!reader.readRange || !reader.planPages || !writer.writeBatch) {
    throw new Error(`job '${job.name}' cannot run the direct loop: its reader must page and its writer must write batches`);
  }
  const readRange = reader.readRange.bind(reader);
  const planPages = reader.planPages.bind(reader);
  const writeBatch = writer.writeBatch.bind(writer);
  const batchSize = Math.max(1, writer.maxBatchSize ?? pageSize);
  const secret = integration.secretRef ? await resolveSecret(integration.secretRef) : undefined;
  const context = { integration, parameters: step.parameters, secret, signal: new AbortController().signal };

  const began = performance.now();
  const counts = { read: 0, written: 0, skipped: 0, failed: 0, pages: 0 };
  let firstWriteMs: number | null = null;
  const ranges: Range[] = [];
  let cursor: EntityId | null = null;
  let planned = false;
  let planning: Promise<void> | undefined;
  // One planning query for `parallelism * BULK_PLAN_AHEAD` pages, as the workflow plans them.
  const plan = async (): Promise<void> => {
    const next = await planPages({ after: cursor, pageSize, pages: parallelism * BULK_PLAN_AHEAD }, step.parameters);
    for (const upTo of next.boundaries) {
      ranges.push({ after: cursor, upTo });
      cursor = upTo;
    }
    planned = next.end || next.boundaries.length === 0;
  };
  const nextRange = async (): Promise<Range | undefined> => {
    while (ranges.length === 0 && !planned) {
      planning ??= plan().finally(() => (planning = undefined));
      await planning;
    }
    return ranges.shift();
  };

  const runPage = async (range: Range): Promise<void> => {
    const rows = await readRange(range, step.parameters);
    counts.read += rows.length;
    const changes: Change[] = [];
    for (const row of rows) {
      const result = await processor.process(row.entity, { integration, parameters: step.parameters, state: null });
      if (result.kind === 'skip') {
        counts.skipped += 1;
        continue;
      }
      changes.push({
        key: row.key,
        operation: 'create',
        data: result.data,
        remoteId: null,
        idempotencyKey: `bench-direct-${runKey}-${row.key}`,
        partial: false,
        expectedVersion: null,
      });
    }
    const created: Array<{ key: string; remoteId: string }> = [];
    for (let start = 0; start < changes.length; start += batchSize) {
      const results = await writeBatch(changes.slice(start, start + batchSize), context);
      firstWriteMs ??= performance.now() - began;
      for (const result of results) {
        counts[result.ok ? 'written' : 'failed'] += 1;
        if (result.ok && result.remoteId) created.push({ key: result.key, remoteId: result.remoteId });
      }
    }
    await writeBackRemoteIds(runtime.app, step, created);
    counts.pages += 1;
  };
  const loop = async (): Promise<void> => {
    for (let range = await nextRange(); range; range = await nextRange()) await runPage(range);
  };
  await Promise.all(Array.from({ length: parallelism }, loop));
  return { ...counts, ms: performance.now() - began, firstWriteMs };
}
