/**
 * One phase of the latency benchmark: the same stepped change stream, delivered either through
 * the outbox, the relay and a Temporal workflow per entity, or through the in-process baseline.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { LatencyTracker, type StepReport } from './measure';
import { type ChangeStream, type CommittedChange, runAtFixedRate } from './stream';

/** The settings every phase shares, so both see the same stream. */
export interface PhasePlan {
  /** Offered rates, lowest first (changes per second). */
  readonly rates: readonly number[];
  /** How long each rate is offered. */
  readonly stepMs: number;
  /** How long to wait after a step for its last changes to arrive before calling them undelivered. */
  readonly drainMs: number;
  /** Pause between steps, so one step's stragglers (follow-up passes) do not load the next. */
  readonly settleMs: number;
}

/** How a phase delivers changes. */
export interface PhaseDelivery {
  readonly name: 'temporal' | 'direct';
  /** Write the outbox row in the change's transaction. */
  readonly outbox: boolean;
  /** Called after each commit (the baseline queues the change here). */
  readonly afterCommit?: (change: CommittedChange) => void;
  /** Routes the demo CRM's write hook to the tracker, or stops routing (null). */
  readonly observe: (tracker: LatencyTracker | null) => void;
  /** Waits until the phase is quiet before the next step or phase (e.g. no workflow running). */
  readonly settle?: () => Promise<void>;
  /** Called as a step begins (the temporal phase times the 5/s step's passes). */
  readonly beforeStep?: (rate: number) => void;
  /** Called once a step's changes are delivered and the phase is quiet; what it returns joins the step's report. */
  readonly afterStep?: (report: StepReport, began: Date) => Promise<Record<string, unknown>>;
}

/** A step's report, with what the delivery added (history figures, the pass breakdown). */
export type PhaseStep = StepReport & Record<string, unknown>;

/** Options of `runPhase`. */
export interface PhaseOptions {
  readonly plan: PhasePlan;
  readonly delivery: PhaseDelivery;
  readonly stream: ChangeStream;
  /** The remote id of each local contact, to match remote writes to changes. */
  readonly remoteIds: ReadonlyMap<number, string>;
  readonly log: (line: string) => void;
}

/**
 * Runs every step of the plan and reports each. A step that leaves changes undelivered ends the
 * phase: its backlog would spill into the next step and measure that step's rate wrongly, and a
 * higher rate would only saturate further.
 */
export async function runPhase(options: PhaseOptions): Promise<PhaseStep[]> {
  const { plan, delivery, stream, remoteIds, log } = options;
  const tracker = new LatencyTracker();
  delivery.observe(tracker);
  const reports: PhaseStep[] = [];
  try {
    for (const rate of plan.rates) {
      const from = stream.nextSeq;
      const began = new Date();
      delivery.beforeStep?.(rate);
      await runAtFixedRate(rate, plan.stepMs, async () => {
        const change = await stream.commit(delivery.outbox);
        tracker.committed(change.seq, remoteIds.get(change.id) ?? `local-${change.id}`, change.at);
        delivery.afterCommit?.(change);
      });
      const offerEnded = performance.now();
      const to = stream.nextSeq - 1;
      const drained = await tracker.waitDelivered(from, to, plan.drainMs);
      const report = tracker.report(rate, from, to, offerEnded);
      log(
        `${delivery.name} ${rate}/s: committed ${report.commitsPerSec}/s, delivered ${report.deliveredPerSec}/s, ` +
          `p50 ${report.p50} p95 ${report.p95} p99 ${report.p99} max ${report.max} ms, undelivered ${report.undelivered}`,
      );
      if (!drained) {
        reports.push(report);
        log(`${delivery.name}: ${report.undelivered} changes still undelivered after ${plan.drainMs} ms; skipping higher rates`);
        break;
      }
      await delivery.settle?.();
      reports.push({ ...report, ...(await delivery.afterStep?.(report, began)) });
      await sleep(plan.settleMs);
    }
  } finally {
    delivery.observe(null);
  }
  return reports;
}
