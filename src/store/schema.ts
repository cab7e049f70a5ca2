/**
 * Kysely types of tidesync's own tables, which live in their own PostgreSQL schema (`tidesync` by
 * default). Application tables are read dynamically by readers.
 */
import type { ColumnType, Generated, JSONColumnType } from 'kysely';
import type { PendingCreate } from '../connectors/connector';

/** Timestamps are written as Date or ISO text and read as Date. */
type Timestamp = ColumnType<Date, Date | string, Date | string>;
/** A timestamp the database fills in by default. */
type DefaultTimestamp = ColumnType<Date, Date | string | undefined, Date | string>;
/** A nullable JSON column: written as JSON text, read as parsed JSON. */
type NullableJson<T> = ColumnType<T | null, string | null | undefined, string | null>;

/** `tidesync.integration`: one configured link to one remote instance. */
export interface IntegrationTable {
  id: Generated<number>;
  type: string;
  name: string;
  enabled: Generated<boolean>;
  two_way_sync: Generated<boolean>;
  sync_priority: Generated<'local' | 'remote'>;
  /** Transport settings (base URL, timeouts...), never a secret. */
  transport: JSONColumnType<Record<string, unknown>>;
  /** A reference such as `env:CRM_TOKEN`, resolved inside activities. */
  secret_ref: string | null;
  /** How long transient failures of one change are retried before it is marked failed (bigint: read as text). */
  retry_window_ms: ColumnType<string, number | undefined, number>;
  /** While degraded, one probe write per this interval. */
  probe_interval_ms: Generated<number>;
  /** Failed remote calls in a row that trip the breaker. */
  breaker_threshold: Generated<number>;
  /** Requests per second the remote allows, across every worker; null: unlimited. */
  rate_limit_rps: number | null;
  /** Requests the remote allows in flight at once, across every worker; null: unlimited. */
  max_concurrent: number | null;
  created_at: DefaultTimestamp;
  updated_at: DefaultTimestamp;
}

/** Status of a job execution; `cancelled`: a bulk export stopped on request (its counters say how far it got). */
export type ExecutionStatus = 'running' | 'completed' | 'completed_with_failures' | 'failed' | 'cancelled';

/** `tidesync.job_execution`: the record of one export run. */
export interface JobExecutionTable {
  id: Generated<string>;
  workflow_id: string;
  run_id: string;
  /** Pass number within the run (a run exports again when changes arrive meanwhile). */
  iteration: Generated<number>;
  job: string;
  integration: string;
  connector: string;
  entity_ids: JSONColumnType<string[]>;
  status: ExecutionStatus;
  read_count: Generated<number>;
  processed_count: Generated<number>;
  written_count: Generated<number>;
  skipped_count: Generated<number>;
  failed_count: Generated<number>;
  warnings: JSONColumnType<string[]>;
  /** Per-record failures: entity key and the remote's message. */
  failures: JSONColumnType<Array<{ key: string; step: string; code: string; message: string }>>;
  /** Fields changed on both sides in this run, and what was decided. */
  conflicts: JSONColumnType<Array<{ key: string; field: string; winner: 'local' | 'remote'; rule: string }>>;
  failed_step: string | null;
  error: string | null;
  started_at: DefaultTimestamp;
  finished_at: Timestamp | null;
}

/** `tidesync.sync_state`: per (integration, connector, entity) what was last pushed. */
export interface SyncStateTable {
  integration_id: number;
  connector: string;
  entity_id: string;
  remote_id: string | null;
  snapshot_hash: string | null;
  snapshot: NullableJson<Record<string, unknown>>;
  remote_version: string | null;
  last_synced_at: Timestamp | null;
  last_error: string | null;
  status: Generated<SyncStatus>;
  /** Remote write attempts of the change that failed (set when it is marked failed). */
  attempts: Generated<number>;
  /** When the entity was marked failed; null unless `status` is `failed`. */
  failed_at: Timestamp | null;
  /** A create sent (or about to be) whose answer is not saved yet; see `PendingCreate`. */
  pending_create: NullableJson<PendingCreate>;
  updated_at: DefaultTimestamp;
}

/**
 * Where an entity stands on the remote; `failed`: its last change was rejected for good or
 * outlasted the retry window, and waits for `retry-failed` or its next change.
 */
export type SyncStatus = 'active' | 'deleted' | 'tombstone' | 'remote_removed' | 'failed';

/** State of an integration's circuit breaker. */
export type BreakerState = 'healthy' | 'degraded';

/** `tidesync.integration_health`: the circuit breaker of one integration. */
export interface IntegrationHealthTable {
  integration_id: number;
  state: Generated<BreakerState>;
  /** Failed remote calls in a row, across the integration's exports. */
  consecutive_failures: Generated<number>;
  last_failure_at: Timestamp | null;
  last_error: string | null;
  /** When the breaker last tripped. */
  degraded_at: Timestamp | null;
  /** While degraded: the next probe may start at this time. */
  probe_at: Timestamp | null;
  /** Probes made since the breaker last tripped. */
  probes: Generated<number>;
  last_probe_at: Timestamp | null;
  /** When a probe last found the remote back. */
  recovered_at: Timestamp | null;
  updated_at: DefaultTimestamp;
}

/** `tidesync.integration_throttle`: the shared state of one integration's rate limiter. */
export interface IntegrationThrottleTable {
  integration_id: number;
  /** The next free request slot: each request takes the slot and moves it one interval (1 / rate) on. */
  next_at: DefaultTimestamp;
  /** No request may start before this time: the remote answered 429 with this Retry-After. */
  paused_until: Timestamp | null;
  /** The rate (requests per second) just after the last cut, climbing back from `recover_from`. */
  reduced_rps: number | null;
  /** When the reduced rate starts climbing back to the limit (the end of the pause that cut it). */
  recover_from: Timestamp | null;
  /** When a 429 last cut the rate (one burst of 429s is one cut). */
  cut_at: Timestamp | null;
  /** 429s the remote answered, ever. */
  throttles: Generated<number>;
  last_throttled_at: Timestamp | null;
  /** The last Retry-After, in milliseconds (bigint: read as text). */
  last_retry_after_ms: ColumnType<string | null, number | null | undefined, number | null>;
  updated_at: DefaultTimestamp;
}

/** Status of an outbox row. */
export type OutboxStatus = 'pending' | 'dispatched' | 'skipped';

/** `tidesync.outbox`: exports requested in the application's own transactions. */
export interface OutboxTable {
  id: Generated<string>;
  integration: string;
  connector: string;
  entity_id: ColumnType<string | number | Record<string, string | number>, string, string>;
  status: Generated<OutboxStatus>;
  skip_reason: string | null;
  attempts: Generated<number>;
  created_at: DefaultTimestamp;
  dispatched_at: Timestamp | null;
}

/** `tidesync.conflict`: every field changed on both sides, with both values and the decision. */
export interface ConflictTable {
  id: Generated<string>;
  integration: string;
  connector: string;
  entity_id: string;
  field: string;
  base_value: ColumnType<unknown, string | null, string | null>;
  local_value: ColumnType<unknown, string | null, string | null>;
  remote_value: ColumnType<unknown, string | null, string | null>;
  winner: 'local' | 'remote';
  rule: 'field_rule' | 'priority';
  workflow_id: string | null;
  run_id: string | null;
  created_at: DefaultTimestamp;
}

/** Every table tidesync owns (in its schema: use a Kysely from `storeDb`). */
export interface TidesyncDatabase {
  integration: IntegrationTable;
  job_execution: JobExecutionTable;
  sync_state: SyncStateTable;
  outbox: OutboxTable;
  conflict: ConflictTable;
  integration_health: IntegrationHealthTable;
  integration_throttle: IntegrationThrottleTable;
}
