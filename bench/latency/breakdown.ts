/**
 * Where the time of one pass goes, for `npm run bench -- latency`: commit -> relay pickup, the
 * signal-with-start call, workflow task dispatch and run, each (non-local) activity's dispatch and
 * run, remote time, database time, and the history's events and bytes. Client-side parts are
 * timed in this process (the relay's scheduler, the writer, every pg query); server-side parts
 * come from the event times of the sampled runs' histories.
 */
import { performance } from 'node:perf_hooks';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { Client as PgClient } from 'pg';
import type { EntityId, ExportScheduler, Writer } from 'tidesync';

/** p50 / p95 / mean of a sample, rounded to 0.1 ms. */
export interface Spread {
  readonly n: number;
  readonly p50: number;
  readonly p95: number;
  readonly mean: number;
}

/** Where the time of a pass went (all in ms unless named otherwise). */
export interface PassBreakdown {
  /** Runs whose histories were read. */
  readonly runs: number;
  /** Commit of a change -> the relay handing its entity to Temporal. */
  readonly relayPickup: Spread;
  /** The signal-with-start call, per entity. */
  readonly signalWithStart: Spread;
  /** Workflow task scheduled -> started (server queue to worker poll), per workflow task. */
  readonly taskDispatch: Spread;
  /** Workflow task started -> completed (the worker's work, local activities included), per task. */
  readonly workflowTask: Spread;
  /** Workflow tasks per run. */
  readonly workflowTasksPerRun: Spread;
  /** Activity task scheduled -> started, by activity type (none when a pass runs local activities). */
  readonly activityDispatch: Readonly<Record<string, Spread>>;
  /** Activity task started -> completed, by activity type. */
  readonly activityRun: Readonly<Record<string, Spread>>;
  /** Activity completed -> the next workflow task started (the result's way back). */
  readonly activityResultToTask: Spread;
  /** Remote calls (the writer's), per exported change. */
  readonly remotePerChange: Spread;
  /** Database time of the whole pipeline (relay, locks, reads, sync state, records) per exported change. */
  readonly databasePerChange: { readonly ms: number; readonly queries: number };
  /** Workflow start -> close. */
  readonly runDuration: Spread;
  /** History events per run. */
  readonly historyEvents: Spread;
  /** History bytes (protobuf) per run. */
  readonly historyBytes: Spread;
}

/** Times the client-side parts while `active`; read them with `breakdown()`. */
export class PassTimer {
  readonly #lastCommit = new Map<string, number>();
  readonly #pickup: number[] = [];
  readonly #signal: number[] = [];
  readonly #remote: number[] = [];
  #queryMs = 0;
  #queries = 0;
  #active = false;
  #restoreQuery: (() => void) | undefined;
  readonly #excluded = new WeakSet<object>();

  /** Starts or stops timing (a step of the benchmark). */
  set active(on: boolean) {
    this.#active = on;
  }

  /** A change of `id` committed at `at` (performance clock). */
  committed(id: EntityId, at: number): void {
    this.#lastCommit.set(String(id), at);
  }

  /** The relay's scheduler, timed: pickup from the entity's last commit, and the call. */
  scheduler(inner: ExportScheduler): ExportScheduler {
    return {
      streamExports: async (request, options) => {
        const began = performance.now();
        const results = await inner.streamExports(request, options);
        if (this.#active) {
          const ms = performance.now() - began;
          for (const id of request.ids) {
            const committed = this.#lastCommit.get(String(id));
            if (committed !== undefined) this.#pickup.push(began - committed);
            // The relay's calls run concurrently per entity: each entity waited the whole call.
            this.#signal.push(ms);
          }
        }
        return results;
      },
    };
  }

  /** The writer, with each remote call timed. */
  writer(inner: Writer): Writer {
    const timed =
      <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
      async (...args: A): Promise<R> => {
        const began = performance.now();
        try {
          return await fn(...args);
        } finally {
          if (this.#active) this.#remote.push(performance.now() - began);
        }
      };
    const wrapped: Writer = {
      ...(inner.supportsPartialUpdate !== undefined ? { supportsPartialUpdate: inner.supportsPartialUpdate } : {}),
      ...(inner.maxBatchSize !== undefined ? { maxBatchSize: inner.maxBatchSize } : {}),
      write: timed(inner.write.bind(inner)),
      ...(inner.writeBatch ? { writeBatch: timed(inner.writeBatch.bind(inner)) } : {}),
      ...(inner.read ? { read: timed(inner.read.bind(inner)) } : {}),
      ...(inner.delete ? { delete: timed(inner.delete.bind(inner)) } : {}),
    };
    return wrapped;
  }

  /** Leaves `client`'s queries out (the application's own pool). */
  exclude(client: object): void {
    this.#excluded.add(client);
  }

  /** Times every pg query of this process (tidesync's pools and the relay's) but the excluded clients'. */
  timeQueries(): void {
    if (this.#restoreQuery) return;
    const proto = PgClient.prototype as unknown as { query: (...args: unknown[]) => unknown };
    const original = proto.query;
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const timer = this;
    proto.query = function (this: unknown, ...args: unknown[]) {
      const result = original.apply(this, args);
      if (timer.#active && result instanceof Promise && !timer.#excluded.has(this as object)) {
        const began = performance.now();
        result.then(
          () => timer.#countQuery(began),
          () => timer.#countQuery(began),
        );
      }
      return result;
    };
    this.#restoreQuery = () => void (proto.query = original);
  }

  /** Stops timing queries. */
  restore(): void {
    this.#restoreQuery?.();
    this.#restoreQuery = undefined;
  }

  #countQuery(began: number): void {
    this.#queryMs += performance.now() - began;
    this.#queries += 1;
  }

  /**
   * The breakdown of the runs `temporal` lists for `query` (at most `maxRuns`), with the client-side
   * times gathered while active; `changes` is how many changes were exported meanwhile.
   */
  async breakdown(client: Client, query: string, options: { maxRuns: number; changes: number }): Promise<PassBreakdown> {
    const dispatch: number[] = [];
    const task: number[] = [];
    const tasksPerRun: number[] = [];
    const activityDispatch = new Map<string, number[]>();
    const activityRun = new Map<string, number[]>();
    const resultToTask: number[] = [];
    const durations: number[] = [];
    const events: number[] = [];
    const bytes: number[] = [];
    let runs = 0;
    for await (const execution of client.workflow.list({ query })) {
      if (runs >= options.maxRuns) break;
      runs += 1;
      const history = await client.workflow.getHandle(execution.workflowId, execution.runId).fetchHistory();
      const list = history.events ?? [];
      events.push(list.length);
      bytes.push(temporal.api.history.v1.History.encode(history).finish().length);
      const at = (e: temporal.api.history.v1.IHistoryEvent | undefined) => toMs(e?.eventTime);
      const byId = new Map(list.map((e) => [String(e.eventId), e]));
      let tasks = 0;
      let lastActivityDone: number | null = null;
      for (const e of list) {
        const started = e.workflowTaskStartedEventAttributes;
        if (started) {
          tasks += 1;
          dispatch.push(at(e) - at(byId.get(String(started.scheduledEventId))));
          if (lastActivityDone !== null) resultToTask.push(at(e) - lastActivityDone);
          lastActivityDone = null;
        }
        const completed = e.workflowTaskCompletedEventAttributes;
        if (completed) task.push(at(e) - at(byId.get(String(completed.startedEventId))));
        const activityStarted = e.activityTaskStartedEventAttributes;
        if (activityStarted) {
          const scheduled = byId.get(String(activityStarted.scheduledEventId));
          const type = scheduled?.activityTaskScheduledEventAttributes?.activityType?.name ?? '?';
          push(activityDispatch, type, at(e) - at(scheduled));
        }
        const activityCompleted = e.activityTaskCompletedEventAttributes;
        if (activityCompleted) {
          const scheduled = byId.get(String(activityCompleted.scheduledEventId));
          const type = scheduled?.activityTaskScheduledEventAttributes?.activityType?.name ?? '?';
          push(activityRun, type, at(e) - at(byId.get(String(activityCompleted.startedEventId))));
          lastActivityDone = at(e);
        }
      }
      tasksPerRun.push(tasks);
      durations.push(at(list[list.length - 1]) - at(list[0]));
    }
    const changes = Math.max(options.changes, 1);
    return {
      runs,
      relayPickup: spread(this.#pickup),
      signalWithStart: spread(this.#signal),
      taskDispatch: spread(dispatch),
      workflowTask: spread(task),
      workflowTasksPerRun: spread(tasksPerRun),
      activityDispatch: Object.fromEntries([...activityDispatch].map(([k, v]) => [k, spread(v)])),
      activityRun: Object.fromEntries([...activityRun].map(([k, v]) => [k, spread(v)])),
      activityResultToTask: spread(resultToTask),
      remotePerChange: spread(this.#remote),
      databasePerChange: {
        ms: round(this.#queryMs / changes),
        queries: round(this.#queries / changes),
      },
      runDuration: spread(durations),
      historyEvents: spread(events),
      historyBytes: spread(bytes),
    };
  }
}

function push(map: Map<string, number[]>, key: string, value: number): void {
  const list = map.get(key) ?? [];
  list.push(value);
  map.set(key, list);
}

function toMs(time: { seconds?: unknown; nanos?: number | null } | null | undefined): number {
  if (!time) return 0;
  return Number(time.seconds ?? 0) * 1000 + (time.nanos ?? 0) / 1e6;
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

/** The spread of a sample. */
export function spread(values: readonly number[]): Spread {
  if (values.length === 0) return { n: 0, p50: 0, p95: 0, mean: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
  return { n: values.length, p50: round(at(0.5)), p95: round(at(0.95)), mean: round(values.reduce((a, b) => a + b, 0) / values.length) };
}
