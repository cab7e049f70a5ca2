/**
 * Inputs and outputs of the export activities. Everything here travels through workflow history:
 * no secrets, only references and plain JSON.
 */
import type { Entity } from '../connectors/connector';
import type { ExecutionStatus } from '../store/schema';
import type { EntityId } from '../entity-id';
import type { RetrySettings } from '../retry-policy';

/** What the workflow knows about the run it belongs to. */
export interface RunRef {
  readonly job: string;
  readonly integration: string;
  readonly connector: string;
}

/** A step, as the workflow sees it. */
export interface PlannedStep {
  readonly name: string;
  readonly title: string;
  /** The step writes remote ids back into the local table after creates. */
  readonly writeBack: boolean;
}

/** What `beginExecution` returns: the resolved integration and the job's steps. */
export interface ExecutionPlan {
  readonly integrationId: number;
  readonly steps: readonly PlannedStep[];
  /**
   * The integration's retry window and probe interval. Absent from plans recorded before they
   * existed: the workflow then uses the defaults.
   */
  readonly retry?: RetrySettings;
}

/** An entity read by the reader. */
export interface ReadItem {
  readonly key: string;
  readonly entity: Entity;
  /** Set (to the entity's size in bytes) when it is too large to travel: `entity` is then empty. */
  readonly tooLarge?: number;
}

/** A change the processor produced, ready for the writer. */
export interface PlannedChange {
  readonly key: string;
  readonly operation: 'create' | 'update' | 'delete';
  readonly data: Entity;
  readonly remoteId: string | null;
  readonly hash: string;
  readonly idempotencyKey: string;
}

/** An entity that needs no remote call, and why. */
export interface Skipped {
  readonly key: string;
  readonly reason: string;
}

/** A record the remote rejected for good (or that could not be processed). */
export interface RecordFailure {
  readonly key: string;
  readonly step: string;
  readonly code: string;
  readonly message: string;
}

/** Counters of one run. */
export interface ExecutionCounters {
  read: number;
  processed: number;
  written: number;
  skipped: number;
  failed: number;
}

/** Input of every step activity. */
export interface StepInput extends RunRef {
  readonly integrationId: number;
  readonly step: string;
}

/** Input of `readStep`. */
export interface ReadStepInput extends StepInput {
  readonly ids: readonly EntityId[];
}

/** Output of `readStep`. */
export interface ReadStepOutput {
  readonly items: readonly ReadItem[];
  readonly missing: readonly string[];
}

/** Input of `processStep`. */
export interface ProcessStepInput extends StepInput {
  readonly items: readonly ReadItem[];
  /** Keys the reader did not find: deleted locally (or never existed). */
  readonly missing: readonly string[];
}

/** Output of `processStep`. */
export interface ProcessStepOutput {
  readonly changes: readonly PlannedChange[];
  readonly skipped: readonly Skipped[];
  readonly failures: readonly RecordFailure[];
  /** Missing keys that were never exported: nothing to delete remotely. */
  readonly notFound: readonly string[];
}

/** A record the writer handled: created, updated, deleted remotely, or tombstoned locally. */
export interface WrittenRecord {
  readonly key: string;
  readonly remoteId: string | null;
  readonly operation: 'create' | 'update' | 'delete' | 'tombstone';
}

/** Input of `writeStep`. */
export interface WriteStepInput extends StepInput {
  readonly changes: readonly PlannedChange[];
  /**
   * Ask the integration's breaker before each attempt (runs that know the failure lifecycle do):
   * a degraded integration refuses the write unless this is the probe `mayWrite` granted.
   */
  readonly gate?: { readonly probe: boolean };
}

/** Input of `mayWrite`. */
export interface MayWriteInput {
  readonly integration: string;
  readonly integrationId: number;
}

/** What `mayWrite` answers: go ahead (maybe as the probe), or wait. */
export type MayWriteOutput =
  | { readonly allowed: true; readonly probe: boolean }
  | { readonly allowed: false; readonly retryInMs: number; readonly lastError: string | null };

/** Input of `markFailed`: changes whose transient failures outlasted the retry window. */
export interface MarkFailedInput extends StepInput {
  readonly changes: ReadonlyArray<Pick<PlannedChange, 'key' | 'hash'>>;
  /** The reason, ending with the last error the remote gave. */
  readonly error: string;
  readonly attempts: number;
}

/** A field changed on both sides, as the execution record keeps it. */
export interface RecordedConflict {
  readonly key: string;
  readonly field: string;
  readonly winner: 'local' | 'remote';
  readonly rule: string;
}

/** Output of `writeStep`. */
export interface WriteStepOutput {
  readonly written: readonly WrittenRecord[];
  /** Changes that needed no remote call after all (the remote already had the values). */
  readonly skipped: readonly Skipped[];
  readonly failures: readonly RecordFailure[];
  readonly conflicts: readonly RecordedConflict[];
  /** Notes for the execution record (a recreated or remote-removed record). */
  readonly warnings: readonly string[];
}

/** Input of `writeBackStep`: records just created remotely whose ids go back into local rows. */
export interface WriteBackInput extends StepInput {
  readonly records: ReadonlyArray<{ readonly key: string; readonly remoteId: string }>;
}

/** Input of `finishExecution`. */
export interface FinishInput {
  readonly runId: string;
  readonly iteration: number;
  readonly status: ExecutionStatus;
  readonly counters: ExecutionCounters;
  readonly warnings: readonly string[];
  readonly failures: readonly RecordFailure[];
  readonly conflicts: readonly RecordedConflict[];
  readonly failedStep: string | null;
  readonly error: string | null;
}
