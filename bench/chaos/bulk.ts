/**
 * The soak's bulk exports, racing the outbox stream on the same contacts: one in mode `all` over
 * the whole table (started with the client, small pages and continue-as-new every few pages, so
 * it crosses a worker SIGKILL and the Temporal restart), paused and resumed once mid-run with
 * `tidesync bulk pause|resume` as an operator would; a reconciliation schedule (`setBulkSchedule`,
 * mode `changed`) that fires during the faults; and, once everything is quiet, a last
 * reconciliation with `tidesync export --all` that must find nothing left to write.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Tidesync } from 'tidesync';
import type { ChaosCli } from './cli';
import type { ChangeLoad } from './load';

/** How the soak runs its bulk exports. */
export const BULK_SETTINGS = {
  /** The `all` run: small pages, two at once, a new run every 20 pages: it lasts, and crosses runs during the faults. */
  all: { pageSize: 50, parallelism: 2, pagesPerRun: 20 },
  /** The reconciliation schedule while the faults run (mode `changed`). */
  schedule: { every: '45s', pageSize: 200, parallelism: 2 },
  /** How long the `all` run stays paused. */
  pauseHoldMs: 4000,
  /** How often the `all` run's progress is read (a query: a busy worker answers it late, so not too often). */
  pollMs: 1000,
} as const;

/** Statuses after which a bulk export does nothing more. */
const FINAL = new Set(['completed', 'completed_with_failures', 'failed', 'cancelled']);
/** Clock slack around a run's start and end when deciding what it could have seen (commits are acknowledged late). */
const SLACK_MS = 2000;
/** Sampling of the load's counters, to know how many rows existed when. */
const SAMPLE_MS = 250;

type Client = Tidesync['client'];
type Progress = Awaited<ReturnType<Client['bulkProgress']>>;
type Result = Awaited<ReturnType<Client['waitForBulkExport']>>;
type Summary = Awaited<ReturnType<Client['listBulkExports']>>[number];

interface Sample {
  readonly at: number;
  /** Contacts created (valid and invalid) so far. */
  readonly added: number;
  readonly deleted: number;
  /** Transactions that failed: each may or may not have committed (an answer lost in a restart). */
  readonly failed: number;
}

/** The load's counters over time, to bound the rows a bulk run could have gone through. */
export class LoadTimeline {
  readonly #load: ChangeLoad;
  readonly #samples: Sample[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(load: ChangeLoad) {
    this.#load = load;
  }

  start(): void {
    this.#sample();
    this.#timer ??= setInterval(() => this.#sample(), SAMPLE_MS);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#sample();
  }

  /**
   * The fewest and most rows a run between `start` and `end` (ms since the epoch) may have read:
   * at least those there before it began and not deleted before it ended, at most those there
   * before it began plus every one created meanwhile; failed transactions widen both.
   */
  rowsBetween(start: number, end: number): { lower: number; upper: number } {
    const before = this.#at(start - SLACK_MS);
    const after = this.#after(end + SLACK_MS);
    const seeded = this.#load.seeded;
    const unsure = after.failed - before.failed;
    return {
      lower: seeded + before.added - after.deleted - unsure,
      upper: seeded + after.added - before.deleted + unsure,
    };
  }

  #sample(): void {
    const c = this.#load.counters;
    this.#samples.push({ at: Date.now(), added: c.creates + c.invalidCreates, deleted: c.deletes, failed: c.failedTransactions });
  }

  #at(at: number): Sample {
    let found = this.#samples[0] as Sample;
    for (const s of this.#samples) {
      if (s.at > at) break;
      found = s;
    }
    return found;
  }

  #after(at: number): Sample {
    return this.#samples.find((s) => s.at >= at) ?? (this.#samples[this.#samples.length - 1] as Sample);
  }
}

/** The pause and resume of the `all` run. */
export interface PauseRecord {
  /** From `bulk pause` until the run said `paused` (the pages in flight finished). */
  readonly pausedAfterMs: number | null;
  readonly heldMs: number;
  readonly doneAtPause: number | null;
  readonly doneAfterHold: number | null;
  readonly statusAfterHold: string | null;
  readonly resumedStatus: string | null;
  /** It paused, nothing moved while paused, and it runs again. */
  readonly ok: boolean;
  readonly error: string | null;
}

/** One bulk run as the report shows it. */
export interface BulkRunReport {
  readonly workflowId: string;
  /** `client` (the `all` run), `schedule` or `cli` (the last reconciliation). */
  readonly origin: 'client' | 'schedule' | 'cli';
  readonly mode: string;
  readonly status: string;
  readonly finished: boolean;
  readonly done: number;
  readonly total: number;
  readonly read: number;
  readonly written: number;
  readonly skipped: number;
  readonly failed: number;
  readonly pages: number;
  /** Workflow runs (continue-as-new). */
  readonly runs: number;
  readonly durationMs: number;
  /** When it began and ended, ms since the epoch. */
  readonly startedAt: number;
  readonly endedAt: number;
  /** Rows it may have gone through, from the load's counters. */
  readonly rowsBounds: { readonly lower: number; readonly upper: number };
  /** Contacts of the invalid set the CRM refused in this run. */
  readonly refused: readonly number[];
  /** Records this run kept as failed because the retry window ran out. */
  readonly windowFailed: number;
  /** Every failure is in the result (not only the first ones). */
  readonly failuresComplete: boolean;
  /** Its failures are exactly the refusals (and retry-window give-ups) it must have met. */
  readonly failuresExact: boolean;
  /** What does not hold (failures included); empty when the run is sound. */
  readonly problems: readonly string[];
}

/** Starts, steers and sums up the soak's bulk exports. */
export class BulkDriver {
  readonly #tidesync: Pick<Tidesync, 'client' | 'store'>;
  readonly #cli: ChaosCli;
  readonly #integration: string;
  readonly #log: (line: string) => void;
  readonly timeline: LoadTimeline;
  #allId: string | null = null;
  #allProgress: Progress | null = null;
  #allEnded = false;
  #poller: NodeJS.Timeout | undefined;
  #pause: PauseRecord | null = null;
  #scheduleSet = false;

  constructor(options: {
    readonly tidesync: Pick<Tidesync, 'client' | 'store'>;
    readonly cli: ChaosCli;
    readonly load: ChangeLoad;
    readonly integration: string;
    readonly log: (line: string) => void;
  }) {
    this.#tidesync = options.tidesync;
    this.#cli = options.cli;
    this.#integration = options.integration;
    this.#log = options.log;
    this.timeline = new LoadTimeline(options.load);
  }

  /** The pause and resume, once done. */
  get pause(): PauseRecord | null {
    return this.#pause;
  }

  /** How far the `all` run is (0 to 1) while it runs; null before it started and after it ended. */
  allFraction(): number | null {
    const p = this.#allProgress;
    if (this.#allEnded || !p || p.total === 0) return null;
    return p.done / p.total;
  }

  /** Starts the `all` run with the client and follows its progress. */
  async startAll(): Promise<string> {
    const { client } = this.#tidesync;
    const started = await client.startBulkExport({
      integration: this.#integration,
      connector: 'contact',
      mode: 'all',
      id: 'soak-all',
      ...BULK_SETTINGS.all,
    });
    this.#allId = started.workflowId;
    const poll = async (): Promise<void> => {
      // The worker may be down for a moment (a query needs one): the next poll asks again.
      const progress = await client.bulkProgress(started.workflowId).catch(() => null);
      if (progress) this.#allProgress = progress;
      if (progress && FINAL.has(progress.status)) {
        this.#allEnded = true;
        this.#log(`  bulk export ${started.workflowId} ${progress.status}: ${progress.done} rows, ${progress.written} written`);
      } else this.#poller = setTimeout(() => void poll(), BULK_SETTINGS.pollMs);
    };
    await poll();
    const { pageSize, parallelism, pagesPerRun } = BULK_SETTINGS.all;
    return `${started.workflowId}: ${this.#allProgress?.total ?? '?'} rows, pages of ${pageSize}, ${parallelism} at once, a new run every ${pagesPerRun} pages`;
  }

  /** Waits until the `all` run has ended, or until `deadline` (ms since the epoch); true when it ended. */
  async waitAllEnded(deadline: number, signal: AbortSignal): Promise<boolean> {
    while (this.#allId !== null && !this.#allEnded && Date.now() < deadline && !signal.aborted) await sleep(250);
    return this.#allEnded || this.#allId === null;
  }

  /**
   * `tidesync bulk pause` on the `all` run, waits until it says `paused` (after its pages in
   * flight), holds, checks nothing moved, then `tidesync bulk resume`.
   */
  async pauseAndResume(): Promise<string> {
    const id = this.#allId;
    const { client } = this.#tidesync;
    const began = Date.now();
    let pausedAfterMs: number | null = null;
    let doneAtPause: number | null = null;
    let after: Progress | null = null;
    let resumed: Progress | null = null;
    let error: string | null = null;
    let pauseSent = false;
    try {
      if (!id || this.#allEnded) throw new Error('the all-mode run is not running');
      await this.#cli.json(['bulk', 'pause', id]);
      pauseSent = true;
      for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(200)) {
        const p = await client.bulkProgress(id).catch(() => null);
        if (p?.status === 'paused') {
          pausedAfterMs = Date.now() - began;
          doneAtPause = p.done;
          break;
        }
      }
      if (pausedAfterMs === null) throw new Error('not paused within 60 s of bulk pause');
      await sleep(BULK_SETTINGS.pauseHoldMs);
      after = await client.bulkProgress(id);
      resumed = await this.#cli.json<Progress>(['bulk', 'resume', id]);
    } catch (err) {
      error = (err as Error).message;
    } finally {
      // Never leave the run paused: the soak would wait for it forever.
      if (id && pauseSent && resumed === null) resumed = await this.#resumeAnyway(id);
    }
    const ok =
      error === null && after?.status === 'paused' && after.done === doneAtPause && resumed !== null && resumed.status !== 'paused';
    this.#pause = {
      pausedAfterMs,
      heldMs: BULK_SETTINGS.pauseHoldMs,
      doneAtPause,
      doneAfterHold: after?.done ?? null,
      statusAfterHold: after?.status ?? null,
      resumedStatus: resumed?.status ?? null,
      ok,
      error,
    };
    if (error) return `failed: ${error}`;
    return `paused at ${doneAtPause} rows ${pausedAfterMs} ms after bulk pause; ${after?.done} rows and ${after?.status} after ${BULK_SETTINGS.pauseHoldMs} ms; bulk resume: ${resumed?.status}`;
  }

  /** Creates the reconciliation schedule and triggers it once now. */
  async setSchedule(): Promise<string> {
    const { client } = this.#tidesync;
    const { every, pageSize, parallelism } = BULK_SETTINGS.schedule;
    const schedule = await client.setBulkSchedule({ integration: this.#integration, connector: 'contact', every, pageSize, parallelism });
    this.#scheduleSet = true;
    await client.triggerBulkSchedule(this.#integration, 'contact');
    return `${schedule.scheduleId} ${schedule.when} (${schedule.mode}), triggered once now`;
  }

  /** Removes the schedule (runs already started go on to their end). */
  async removeSchedule(): Promise<void> {
    if (!this.#scheduleSet) return;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#tidesync.client.removeBulkSchedule(this.#integration, 'contact');
        this.#scheduleSet = false;
        return;
      } catch (err) {
        if (attempt >= 5) throw err;
        await sleep(1000 * attempt);
      }
    }
  }

  /** Stops following progress. */
  stop(): void {
    clearTimeout(this.#poller);
    this.timeline.stop();
  }

  /** Every bulk run of the soak's integration, once they are over, checked (see `BulkRunReport`). */
  async collect(invalid: ReadonlyMap<number, number>): Promise<BulkRunReport[]> {
    const summaries = await this.#summaries();
    const reports: BulkRunReport[] = [];
    for (const summary of summaries.reverse()) {
      const origin = summary.workflowId === this.#allId ? 'client' : summary.workflowId.includes('/scheduled') ? 'schedule' : 'cli';
      reports.push(await this.#report(summary, origin, invalid));
    }
    return reports;
  }

  /**
   * `tidesync export --all` (mode `changed`) once everything is quiet: a reconciliation that must
   * find nothing left to write, and fail exactly the contacts the CRM refuses.
   */
  async reconcile(invalid: ReadonlyMap<number, number>): Promise<BulkRunReport> {
    const printed = await this.#cli.json<{ workflowId: string }>(['export', '--all', this.#integration, 'contact'], 300_000);
    const summary = (await this.#summaries()).find((s) => s.workflowId === printed.workflowId);
    if (!summary) throw new Error(`tidesync export --all printed ${printed.workflowId}, which bulk list does not know`);
    const report = await this.#report(summary, 'cli', invalid);
    const problems = [...report.problems];
    if (report.written !== 0) problems.push(`the last reconciliation wrote ${report.written} rows: they were not in sync`);
    const exact = report.refused.length === invalid.size;
    if (!exact) problems.push(`it refused ${report.refused.length} contacts, the invalid set has ${invalid.size}`);
    return { ...report, failuresExact: report.failuresExact && exact, problems };
  }

  async #summaries(): Promise<Summary[]> {
    return this.#tidesync.client.listBulkExports({ integration: this.#integration, limit: 200 });
  }

  /** One run's result, execution record and checks. */
  async #report(summary: Summary, origin: BulkRunReport['origin'], invalid: ReadonlyMap<number, number>): Promise<BulkRunReport> {
    const { workflowId } = summary;
    const problems: string[] = [];
    let result: Result | null = null;
    if (summary.execution === 'COMPLETED') result = await this.#tidesync.client.waitForBulkExport(workflowId);
    else problems.push(`did not finish: Temporal says ${summary.execution}, tidesync ${summary.status ?? 'nothing'}`);
    const endedAt = summary.closeTime?.getTime() ?? Date.now();
    const startedAt = result ? endedAt - result.durationMs : summary.startTime.getTime();
    const counters = result?.counters ?? { read: 0, processed: 0, written: 0, skipped: 0, failed: 0 };
    const done = result?.done ?? 0;
    const finished = result !== null && (result.status === 'completed' || result.status === 'completed_with_failures');
    if (result && !finished) problems.push(`ended ${result.status}: ${result.error ?? ''}`);

    // Its counts add up to the rows it went through, and those are rows that existed meanwhile.
    const bounds = this.timeline.rowsBetween(startedAt, endedAt);
    if (result) {
      const sum = counters.written + counters.skipped + counters.failed;
      if (sum !== done)
        problems.push(
          `written ${counters.written} + skipped ${counters.skipped} + failed ${counters.failed} = ${sum}, not the ${done} rows done`,
        );
      if (counters.read !== done) problems.push(`read ${counters.read} rows but done ${done}`);
      if (done < bounds.lower || done > bounds.upper)
        problems.push(`${done} rows done, but ${bounds.lower} to ${bounds.upper} existed meanwhile`);
    }
    problems.push(...(await this.#recordProblems(workflowId, result)));

    // Failures: refusals of the invalid set (each once, every one it must have met) and retry-window give-ups only.
    const failureProblems: string[] = [];
    const refused: number[] = [];
    const failures = result?.failures ?? [];
    let windowFailed = 0;
    for (const f of failures) {
      const id = Number(f.key);
      if (f.code === 'retry_window_exhausted') windowFailed += 1;
      else if (f.code === 'remote_permanent' && invalid.has(id)) refused.push(id);
      else failureProblems.push(`contact ${f.key} failed unexpectedly: ${f.code} ${f.message}`);
    }
    if (new Set(refused).size !== refused.length) failureProblems.push(`a contact was refused twice in one run: ${refused.join(', ')}`);
    const complete = failures.length === counters.failed;
    if (complete && result) {
      const met = new Set([...refused, ...failures.filter((f) => f.code === 'retry_window_exhausted').map((f) => Number(f.key))]);
      for (const [id, at] of invalid) {
        if (at < startedAt - SLACK_MS && !met.has(id))
          failureProblems.push(`invalid contact ${id} existed before the run began but it did not fail`);
        if (at > endedAt + SLACK_MS && met.has(id))
          failureProblems.push(`invalid contact ${id} was created after the run ended but it failed there`);
      }
    }
    return {
      workflowId,
      origin,
      mode: result?.mode ?? '?',
      status: result?.status ?? summary.status ?? 'unknown',
      finished,
      done,
      total: result?.total ?? 0,
      read: counters.read,
      written: counters.written,
      skipped: counters.skipped,
      failed: counters.failed,
      pages: result?.pages ?? 0,
      runs: result?.runs ?? 0,
      durationMs: result?.durationMs ?? 0,
      startedAt,
      endedAt,
      rowsBounds: bounds,
      refused: refused.sort((a, b) => a - b),
      windowFailed,
      failuresComplete: complete,
      failuresExact: failureProblems.length === 0,
      problems: [...problems, ...failureProblems],
    };
  }

  /** The run's execution record says what its result says. */
  async #recordProblems(workflowId: string, result: Result | null): Promise<string[]> {
    const records = await this.#tidesync.store
      .selectFrom('job_execution')
      .select(['status', 'read_count', 'written_count', 'skipped_count', 'failed_count', 'finished_at'])
      .where('workflow_id', '=', workflowId)
      .execute();
    if (records.length !== 1) return [`${records.length} execution records, not 1`];
    const r = records[0] as (typeof records)[number];
    if (!result) return [];
    const c = result.counters;
    const same =
      r.status === result.status &&
      r.read_count === c.read &&
      r.written_count === c.written &&
      r.skipped_count === c.skipped &&
      r.failed_count === c.failed &&
      r.finished_at !== null;
    return same ? [] : [`execution record ${JSON.stringify(r)} differs from the result ${JSON.stringify({ status: result.status, ...c })}`];
  }

  async #resumeAnyway(id: string): Promise<Progress | null> {
    for (let attempt = 1; attempt <= 5; attempt++) {
      const resumed = await this.#tidesync.client.resumeBulkExport(id).catch(() => null);
      if (resumed) return resumed;
      await sleep(1000 * attempt);
    }
    this.#log(`  could not resume ${id}: the soak will wait for it in vain`);
    return null;
  }
}
