/**
 * The baseline: no outbox, no relay, no Temporal. After its commit a change goes into an
 * in-process queue; a few consumers run the export job's own reader, processor and writer on it.
 * It keeps none of the guarantees (a crash loses the queue, a failure is not retried, no sync
 * state or execution record is written), which is exactly what the comparison prices.
 */
import { type Change, type Integration, type Runtime, type SyncState, resolveSecret } from 'tidesync';

/** Options of `DirectPipeline`. */
export interface DirectPipelineOptions {
  readonly runtime: Runtime;
  readonly integration: Integration;
  readonly connector: string;
  /** Sync state by entity key, loaded once after the initial export: it holds the remote ids. */
  readonly states: ReadonlyMap<string, SyncState>;
  /** Changes pushed at once; default 8. */
  readonly concurrency?: number;
  readonly log: (line: string) => void;
}

interface Item {
  readonly seq: number;
  readonly id: number;
}

/** An in-process queue drained by `concurrency` read -> process -> write loops. */
export class DirectPipeline {
  readonly #options: DirectPipelineOptions;
  readonly #queue: Item[] = [];
  readonly #abort = new AbortController();
  #wake: (() => void) | undefined;
  #stopped = false;
  #loops: Promise<void>[] = [];
  #failures = 0;

  constructor(options: DirectPipelineOptions) {
    this.#options = options;
  }

  /** Changes that failed (not retried: the baseline has no retries). */
  get failures(): number {
    return this.#failures;
  }

  /** Starts the consumers. */
  start(): void {
    const concurrency = this.#options.concurrency ?? 8;
    this.#loops = Array.from({ length: concurrency }, () => this.#consume());
  }

  /** Queues a committed change of local contact `id`. */
  push(seq: number, id: number): void {
    this.#queue.push({ seq, id });
    this.#wake?.();
  }

  /** Stops the consumers, aborting requests in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    this.#wake?.();
    await Promise.all(this.#loops);
  }

  async #consume(): Promise<void> {
    while (!this.#stopped) {
      const item = this.#queue.shift();
      if (!item) {
        // Every idle consumer waits on the same wake-up; each re-checks the queue after it.
        await new Promise<void>((resolve) => {
          const previous = this.#wake;
          this.#wake = () => {
            this.#wake = undefined;
            previous?.();
            resolve();
          };
        });
        continue;
      }
      try {
        await this.#export(item);
      } catch (error) {
        if (this.#stopped) return;
        this.#failures += 1;
        this.#options.log(`direct: change ${item.seq} of contact ${item.id} failed: ${(error as Error).message}`);
      }
    }
  }

  /** What one pass of the export job does for one entity, minus the bookkeeping. */
  async #export(item: Item): Promise<void> {
    const { runtime, integration, connector, states } = this.#options;
    const jobName = runtime.connectors.exportWorkflowType(integration.type, connector);
    const job = runtime.jobs.get(jobName);
    if (!job) throw new Error(`unknown job '${jobName}'`);
    for (const step of job.steps) {
      const read = await runtime.services.get('reader', step.reader).read([item.id], step.parameters);
      const found = read.found[0];
      if (!found) throw new Error(`contact ${item.id} not found`);
      const state = states.get(found.key) ?? null;
      if (!state?.remoteId) throw new Error(`contact ${item.id} has no remote id: was it exported first?`);
      const processor = runtime.services.get('processor', step.processor);
      const result = await processor.process(found.entity, { integration, parameters: step.parameters, state });
      if (result.kind === 'skip') throw new Error(`contact ${item.id} skipped: ${result.reason}`);
      // Resolved per change, as the write activity does, so a rotated secret is picked up.
      const secret = integration.secretRef ? await resolveSecret(integration.secretRef) : undefined;
      const change: Change = {
        key: found.key,
        operation: 'update',
        data: result.data,
        remoteId: state.remoteId,
        idempotencyKey: `bench-direct-${item.seq}-${step.name}`,
        // The whole record, unconditionally: the plain push the baseline stands for.
        partial: false,
        expectedVersion: null,
      };
      await runtime.services
        .get('writer', step.writer)
        .write(change, { integration, parameters: step.parameters, secret, signal: this.#abort.signal });
    }
  }
}
