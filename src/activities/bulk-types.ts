/**
 * Inputs and outputs of the bulk export's activities. Everything here travels through workflow
 * history: names, ids, cursors and counters only, never entity data or a secret.
 */
import type { PagePlan } from '../connectors/connector';
import type { EntityId } from '../entity-id';
import type { RetrySettings } from '../retry-policy';
import type { ExecutionStatus } from '../store/schema';
import type { ExecutionCounters, RecordFailure, RunRef } from './types';

/** `changed`: write only what differs from the last export (reconciliation); `all`: write every row again. */
export type BulkMode = 'changed' | 'all';

/** Which rows a bulk export goes through. */
export type BulkScope =
  | { readonly all: true }
  | { readonly ids: readonly EntityId[] }
  /** The name of a filter declared in the job's step parameters (`filters: { name: sql }`). */
  | { readonly filter: string };

/** The run a bulk activity belongs to. */
export interface BulkRunRef extends RunRef {
  readonly integrationId: number;
  /** The bulk export's workflow id: the same across continue-as-new (it keys `all` mode's writes). */
  readonly bulkId: string;
}

/** Input of `bulkBegin`. */
export interface BulkBeginInput extends RunRef {
  readonly workflowId: string;
  /** The first run's id: the execution record's key for the whole export. */
  readonly runId: string;
  readonly scope: BulkScope;
  readonly mode: BulkMode;
  /**
   * Also plan the first pages of a keyset scope (the whole table or a filter), sparing the
   * workflow a `bulkPlan` round trip before its first page: `pages` pages of `pageSize` rows, or
   * of the size `fitPageSize` gives for the rows counted and `parallelism` when `fit` is set.
   */
  readonly planFirst?: { readonly pageSize: number; readonly fit: boolean; readonly parallelism: number; readonly pages: number };
}

/** What `bulkBegin` returns. */
export interface BulkBeginOutput {
  readonly integrationId: number;
  /** Why the integration's settings refuse exports (disabled, one-way), or null. */
  readonly refusal: string | null;
  /** Rows in scope when the export began (for progress and ETA). */
  readonly total: number;
  readonly retry: RetrySettings;
  /** The first pages (`planFirst`): their size, and where they end. Absent when not asked or refused. */
  readonly firstPages?: { readonly pageSize: number; readonly plan: PagePlan };
}

/** Input of `bulkPlan`. */
export interface BulkPlanInput extends BulkRunRef {
  readonly after: EntityId | null;
  readonly filter?: string | undefined;
  readonly pageSize: number;
  readonly pages: number;
}

/** One page: a keyset range of the first step's table, or a slice of an id list. */
export type BulkPageRange =
  | { readonly after: EntityId | null; readonly upTo: EntityId | null; readonly filter?: string | undefined }
  | { readonly ids: readonly EntityId[] };

/** Input of `bulkPage`. */
export interface BulkPageInput extends BulkRunRef {
  readonly mode: BulkMode;
  /** When the export began (ms since the epoch): mode `all` writes what was not synced since. */
  readonly startedAt: number;
  readonly page: BulkPageRange;
  /** Ask the integration's breaker first (see `WriteStepInput.gate`). */
  readonly gate?: { readonly probe: boolean };
  /**
   * The retry window ran out for this page: plan it, and mark every change `failed` with this
   * reason instead of writing (nothing is sent).
   */
  readonly giveUp?: { readonly error: string; readonly attempts: number };
}

/** What one page did. */
export interface BulkPageOutput {
  readonly counters: ExecutionCounters;
  /** The page's last id: the cursor after it. */
  readonly lastId: EntityId | null;
  /** Records that failed, at most `BULK_FAILURES_PER_PAGE` of them. */
  readonly failures: readonly RecordFailure[];
}

/** Input of `bulkRecord`: the execution record of a bulk export, as it stands or as it ended. */
export interface BulkRecordInput {
  /** The first run's id (the record's key). */
  readonly runId: string;
  readonly status: ExecutionStatus;
  readonly counters: ExecutionCounters;
  readonly failures: readonly RecordFailure[];
  readonly warnings: readonly string[];
  readonly error: string | null;
  /** True when the export is over (sets the record's finish time). */
  readonly finished: boolean;
}
