/**
 * What the bulk export workflow and its callers share: its type, input and result, its progress
 * and the query and updates that read and steer it. Pure definitions: the client imports them.
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { BulkMode, BulkScope } from '../activities/bulk-types';
import type { ExecutionCounters, RecordFailure } from '../activities/types';
import type { EntityId } from '../entity-id';
import type { RetrySettings } from '../retry-policy';
import type { ExecutionStatus } from '../store/schema';

/** The workflow type of bulk exports. */
export const BULK_EXPORT_WORKFLOW = 'bulkExport';

/** The input of a bulk export run. Names, ids and counters only: never a secret or entity data. */
export interface BulkExportInput {
  readonly integration: string;
  readonly connector: string;
  /** The connector's export job (its steps run on every page). */
  readonly job: string;
  readonly mode: BulkMode;
  readonly scope: BulkScope;
  readonly pageSize: number;
  /**
   * Set when the caller gave no page size: `pageSize` is then the largest a page may be, and the
   * first run fits it to the rows counted (see `fitPageSize`); later runs get the fitted size.
   */
  readonly fitPageSize?: boolean;
  readonly parallelism: number;
  /** Pages a run starts before it continues as new; default `BULK_PAGES_PER_RUN`. */
  readonly pagesPerRun?: number;
  /** Where the export stands; set by continue-as-new, absent on the first run. */
  readonly state?: BulkState;
}

/** Where a bulk export stands between runs. */
export interface BulkState {
  /** The first run's id: the key of the export's execution record. */
  readonly executionRunId: string;
  readonly integrationId: number;
  readonly retry: RetrySettings;
  readonly total: number;
  /** Past the last finished page: after an id (keyset), or at an index of the id list. */
  readonly position: BulkPosition;
  readonly counters: ExecutionCounters;
  /** Rows gone through (read, or ids taken from the list). */
  readonly done: number;
  readonly pages: number;
  readonly failures: readonly RecordFailure[];
  /** Workflow time (ms) the export began, and how long it has run unpaused so far. */
  readonly startedAt: number;
  readonly activeMs: number;
  readonly paused: boolean;
  readonly runs: number;
}

/** Past the last finished page. */
export type BulkPosition = { readonly after: EntityId | null } | { readonly index: number };

/** What `progress` (and pause, resume, cancel) answer. */
export interface BulkProgress {
  readonly status: 'running' | 'paused' | 'retrying' | 'cancelling' | ExecutionStatus;
  readonly mode: BulkMode;
  /** Rows gone through, of `total` (counted when the export began; rows added since may exceed it). */
  readonly done: number;
  readonly total: number;
  readonly written: number;
  readonly skipped: number;
  readonly failed: number;
  readonly pages: number;
  /** Rows per second while running (pauses excluded). */
  readonly rate: number;
  /** Seconds left at that rate; null before the first page. */
  readonly etaSeconds: number | null;
  readonly startedAt: string;
  /** Continue-as-new runs so far (1 for the first). */
  readonly runs: number;
}

/** What a finished bulk export returns (its execution record says the same). */
export interface BulkExportResult {
  readonly status: ExecutionStatus;
  readonly mode: BulkMode;
  /** Rows gone through. */
  readonly done: number;
  readonly counters: ExecutionCounters;
  readonly total: number;
  readonly pages: number;
  readonly runs: number;
  /** The first failures (all are kept as `failed` records: `tidesync failures`). */
  readonly failures: readonly RecordFailure[];
  /** From the start to the end, paused time included. */
  readonly durationMs: number;
  /**
   * The time it ran, paused time left out: the rate of a finished export is `done / activeMs`.
   * Absent from the results of exports that ended before it was recorded.
   */
  readonly activeMs?: number;
  readonly error: string | null;
}

/** Where the export stands. */
export const progressQuery = defineQuery<BulkProgress>('progress');
/** Stop starting pages; the pages in flight finish, then the export waits (holding no worker slot). */
export const pauseUpdate = defineUpdate<BulkProgress>('pause');
/** Start pages again after a pause. */
export const resumeUpdate = defineUpdate<BulkProgress>('resume');
/** Stop for good after the pages in flight; the execution record keeps what was done, as `cancelled`. */
export const cancelUpdate = defineUpdate<BulkProgress, [reason: string | null]>('cancel');
