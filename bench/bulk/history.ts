/**
 * The history a bulk export wrote: every run of its continue-as-new chain, followed from the
 * first run through each run's closing `ContinuedAsNew` event, with each run's events counted
 * from its real history (not from visibility, which may lag behind).
 */
import type { Client } from '@temporalio/client';
import type { temporal as proto } from '@temporalio/proto';

/** Events of a bulk export, over all its runs. */
export interface ChainHistory {
  readonly runs: number;
  readonly events: number;
  /** Events of the longest run: what continue-as-new bounds. */
  readonly longestRun: number;
}

/** Counts the events of every run of `workflowId`, starting from run `firstRunId`. */
export async function countChainHistory(temporal: Client, workflowId: string, firstRunId: string): Promise<ChainHistory> {
  let runs = 0;
  let events = 0;
  let longestRun = 0;
  for (let runId: string | null = firstRunId; runId !== null;) {
    const history: proto.api.history.v1.IHistory = await temporal.workflow.getHandle(workflowId, runId).fetchHistory();
    const list = history.events ?? [];
    runs += 1;
    events += list.length;
    longestRun = Math.max(longestRun, list.length);
    runId = list.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? null;
  }
  return { runs, events, longestRun };
}
