/**
 * The contracts every integration implements: connectors name their export job (Oro's
 * `TwoWaySyncConnectorInterface`), and readers, processors and writers are the parts of a step.
 */
import type { EntityId } from '../entity-id';
import type { PermanentRemoteError, RemoteVersionConflictError } from '../errors';

/** A row of an application table, as read by a reader. */
export type Entity = Record<string, unknown>;

/** Which side wins when both changed the same field. */
export type SyncPriority = 'local' | 'remote';

/** One configured link to one remote instance (a row of `tidesync.integration`). */
export interface Integration {
  readonly id: number;
  readonly type: string;
  readonly name: string;
  readonly enabled: boolean;
  readonly twoWaySync: boolean;
  readonly syncPriority: SyncPriority;
  /** Transport settings such as a base URL; never a secret. */
  readonly transport: Readonly<Record<string, unknown>>;
  /** Where the secret lives (for example `env:CRM_TOKEN`); resolved only inside activities. */
  readonly secretRef: string | null;
  /** How long transient failures of one change are retried before it is marked `failed` (ms). */
  readonly retryWindowMs: number;
  /** While the integration is degraded, one probe write per this interval (ms). */
  readonly probeIntervalMs: number;
  /** Failed remote calls in a row (across the integration's exports) that trip its breaker. */
  readonly breakerThreshold: number;
  /** What the remote allows, kept by every worker and export of the integration together. */
  readonly rateLimit: RateLimit;
}

/**
 * The limits of an integration's remote. Every remote call tidesync makes for a writer counts as
 * one request: `write`, `writeBatch`, `delete`, and the `read` before an update.
 */
export interface RateLimit {
  /** Requests a second, across every worker; null: unlimited. */
  readonly requestsPerSecond: number | null;
  /** Requests in flight at once, across every worker; null: unlimited. */
  readonly maxConcurrent: number | null;
}

/** What tidesync remembers about one entity on one remote. */
export interface SyncState {
  readonly remoteId: string | null;
  readonly snapshotHash: string | null;
  readonly snapshot: Entity | null;
  readonly remoteVersion: string | null;
  readonly lastSyncedAt: Date | null;
  readonly lastError: string | null;
  /**
   * active: on the remote (with no `remoteId` yet: its first create is being sent, see
   * `pendingCreate`); deleted: deleted there after a local delete; tombstone: deleted locally
   * only; remote_removed: gone from the remote, not exported again until reset; failed: the last
   * change was rejected for good or outlasted the retry window (`lastError` says why), kept until
   * `retry-failed` or the entity's next change.
   */
  readonly status: 'active' | 'deleted' | 'tombstone' | 'remote_removed' | 'failed';
  /** Remote write attempts of the change that failed; 0 unless `failed`. */
  readonly attempts: number;
  /** When the entity was marked `failed`. */
  readonly failedAt: Date | null;
  /**
   * A create whose answer was never saved (a lost response, then retries that ran out, or a
   * crash): the remote may hold the record. tidesync sends that create again before anything
   * else, so the remote answers it from its idempotency records instead of making a second one.
   */
  readonly pendingCreate?: PendingCreate | null;
}

/** A create recorded before it is sent, until its answer (the remote id) is saved. */
export interface PendingCreate {
  readonly idempotencyKey: string;
  /** The hash of `data` (the snapshot it would become). */
  readonly hash: string;
  readonly data: Record<string, unknown>;
}

/**
 * The part of an integration that handles one entity type. Like Oro's two-way connectors it
 * names its export job; that name is the Temporal workflow type of every export it runs.
 */
export interface Connector {
  /** The integration type this connector belongs to, e.g. `demo`. */
  readonly integrationType: string;
  /** The connector's name within its integration type, e.g. `contact`. */
  readonly name: string;
  /** The export job (and Temporal workflow type) that pushes this connector's entities. */
  getExportJobName(): string;
  /**
   * Which side owns a field when both sides changed it since the last sync; overrides the
   * integration's sync priority for those fields (remote field names).
   */
  readonly fieldRules?: Readonly<Record<string, SyncPriority>>;
  /**
   * What to do when an update finds the remote record gone: create it again (default), or mark
   * the entity remote-removed and stop exporting it until `tidesync reset`.
   */
  readonly onRemoteMissing?: 'recreate' | 'mark_removed';
  /**
   * The default parameters of the `entity.by_id` reader for this connector's export job: as in
   * Oro, where the connector knows its entity, a step may then leave them out (`parameters: ~`).
   * Parameters a step sets win.
   */
  readonly entity?: ConnectorEntity;
}

/** The table a connector's entities live in, in the shape of the `entity.by_id` reader's parameters. */
export interface ConnectorEntity {
  /** Default `public`. */
  readonly schema?: string;
  readonly table: string;
  /** One column, or several for a composite id. */
  readonly identifier: string | readonly string[];
  /** Columns to read; all when omitted. */
  readonly columns?: readonly string[];
}

/** Parameters of a step as declared in the job definition. */
export type StepParameters = Readonly<Record<string, unknown>>;

/** The result of reading: entities by encoded id; ids absent from `found` are missing. */
export interface ReadResult {
  readonly found: ReadonlyArray<{ readonly id: EntityId; readonly key: string; readonly entity: Entity }>;
  readonly missing: readonly string[];
}

/**
 * A stretch of a table in identifier order, for bulk exports: the rows after one id and up to
 * another (composite ids compare as rows, `(a, b) > ($1, $2)`).
 */
export interface KeysetRange {
  /** Rows after this id (exclusive); null: from the first row. */
  readonly after: EntityId | null;
  /** Rows up to this id (inclusive); null: to the last row. */
  readonly upTo: EntityId | null;
  /**
   * The name of a filter the step declares in its parameters (`filters: { active: "status <> 'draft'" }`).
   * Only the name travels: the SQL stays in the job definition.
   */
  readonly filter?: string | undefined;
  /**
   * Only the identifier columns are needed: a bulk export whose writer writes batches reads each
   * row again under its lock, and takes from this read only the ids. A reader may then return
   * entities holding only those columns (or whole rows, as without it).
   */
  readonly idsOnly?: boolean | undefined;
}

/** Where the next pages of a bulk export end: ids every `pageSize` rows after a cursor. */
export interface PagePlan {
  /** The last id of each page, in order; the last one may end a shorter page. */
  readonly boundaries: readonly EntityId[];
  /** True when no row follows the last boundary (at the time of planning). */
  readonly end: boolean;
}

/** Reads entities by id. */
export interface Reader {
  /**
   * Checks the step's parameters once, when jobs are loaded (for example that a table exists).
   * Throws a `ConfigurationError` that names the bad value.
   */
  prepare(parameters: StepParameters): Promise<void>;
  /** Reads many entities at once; a missing entity is reported in `missing`, never thrown. */
  read(ids: readonly EntityId[], parameters: StepParameters): Promise<ReadResult>;
  /**
   * Optional: checks ids before an export is scheduled (for example against the identifier
   * columns' types), so a bad id is refused at the call. Returns one problem per id, or null.
   */
  checkIds?(ids: readonly EntityId[], parameters: StepParameters): Promise<ReadonlyArray<string | null>>;
  /**
   * Optional, for bulk exports: the rows of a range, in identifier order (one query). Readers
   * without it export by id lists only.
   */
  readRange?(range: KeysetRange, parameters: StepParameters): Promise<ReadResult['found']>;
  /**
   * Optional, with `readRange`: the ids that end the next `pages` pages of `pageSize` rows after
   * `after` (one cheap query over the identifier).
   */
  planPages?(
    request: { readonly after: EntityId | null; readonly filter?: string | undefined; readonly pageSize: number; readonly pages: number },
    parameters: StepParameters,
  ): Promise<PagePlan>;
  /** Optional, with `readRange`: how many rows a bulk export will go through (for its progress). */
  countRows?(request: { readonly filter?: string | undefined }, parameters: StepParameters): Promise<number>;
  /** Optional: the names of the filters the step's parameters declare, for bulk exports. */
  filterNames?(parameters: StepParameters): readonly string[];
}

/** What a processor decided for one entity. */
export type ProcessResult = { readonly kind: 'changeset'; readonly data: Entity } | { readonly kind: 'skip'; readonly reason: string };

/** What the processor sees besides the entity. */
export interface ProcessContext {
  readonly integration: Integration;
  readonly parameters: StepParameters;
  /** The last sync state of this entity on this integration, or null if never synced. */
  readonly state: SyncState | null;
}

/** Turns a local entity (and its last sync state) into the remote's shape, or a skip. */
export interface Processor {
  process(entity: Entity, context: ProcessContext): ProcessResult | Promise<ProcessResult>;
}

/** A remote record as the writer reads it back: its version and fields in the remote's shape. */
export interface RemoteRecord {
  readonly version: string | null;
  readonly data: Entity;
}

/** One change to push. */
export interface Change {
  readonly key: string;
  readonly operation: 'create' | 'update' | 'delete';
  /** The remote's shape of the entity; empty for a delete. */
  readonly data: Entity;
  /** Known remote id for updates and deletes; null for a create. */
  readonly remoteId: string | null;
  /** Stable across retries of this same change; send it to the remote as an idempotency key. */
  readonly idempotencyKey: string;
  /** `data` holds only the fields to change (send a partial update) rather than the whole record. */
  readonly partial: boolean;
  /** Write only if the remote record is still at this version (`If-Match`); null: unconditional. */
  readonly expectedVersion: string | null;
}

/** What the writer sees besides the change. */
export interface WriteContext {
  readonly integration: Integration;
  readonly parameters: StepParameters;
  /** The integration's secret, resolved from its reference inside the activity. */
  readonly secret: string | undefined;
  /** Aborted when the activity is cancelled or times out. */
  readonly signal: AbortSignal;
}

/** The remote's answer to a successful write. */
export interface WriteResult {
  readonly remoteId: string;
  readonly remoteVersion: string | null;
}

/**
 * Why the remote refused one change of a batch: for good (`PermanentRemoteError`, with the
 * remote's status and message), because the record is gone (`RemoteNotFoundError`, a
 * `PermanentRemoteError`), or because it moved on past `change.expectedVersion`
 * (`RemoteVersionConflictError`). Never a transient failure: those fail the whole call.
 */
export type BatchItemError = PermanentRemoteError | RemoteVersionConflictError;

/** One change of a batch that the remote applied. */
export interface BatchItemSuccess extends WriteResult {
  /** The `key` of the change. */
  readonly key: string;
  readonly ok: true;
}

/** One change of a batch that the remote refused; the other changes of the batch are not affected. */
export interface BatchItemFailure {
  /** The `key` of the change. */
  readonly key: string;
  readonly ok: false;
  /** The reason, carrying the remote's own message in `remoteMessage`. */
  readonly error: BatchItemError;
}

/** What became of one change of a `writeBatch` call. */
export type BatchItemResult = BatchItemSuccess | BatchItemFailure;

/**
 * Pushes changes to the remote. Throws `TransientRemoteError`, `RateLimitedError` or
 * `PermanentRemoteError` (see `errors.ts`) so the engine can retry or record the failure.
 */
export interface Writer {
  /** The writer can send only the changed fields (`change.partial`), e.g. with PATCH. */
  readonly supportsPartialUpdate?: boolean;
  /**
   * Creates or updates the remote record. With `change.expectedVersion` set the update must be
   * conditional, throwing `RemoteVersionConflictError` when the remote moved on; an update of a
   * record that is gone throws `RemoteNotFoundError`.
   */
  write(change: Change, context: WriteContext): Promise<WriteResult>;
  /**
   * The most changes one `writeBatch` call takes (the remote's limit per request); callers split
   * larger batches. Without it, a batch is not limited by the writer.
   */
  readonly maxBatchSize?: number;
  /**
   * Creates or updates many remote records at once, for bulk exports: each change as `write`
   * would write it (`remoteId`, `partial`, `expectedVersion` and `idempotencyKey` mean the same),
   * in fewer requests. `changes` hold creates and updates with distinct keys; deletes go through
   * `delete`.
   *
   * Resolves with exactly one result per change, in the order of `changes`. One change the
   * remote rejects fails that record only, with the remote's message (`ok: false`); the others
   * are written. A failure of the whole request is thrown instead, as `write` throws it:
   * transient (`TransientRemoteError`, `RateLimitedError`) to retry the same batch, which must
   * then be idempotent (send an idempotency key derived from the changes' keys); permanent to
   * fail every change of the batch with that message.
   */
  writeBatch?(changes: readonly Change[], context: WriteContext): Promise<readonly BatchItemResult[]>;
  /**
   * Reads the remote record, or null when it is gone. With it, the engine detects remote changes
   * before each update and merges instead of overwriting them.
   */
  read?(remoteId: string, context: WriteContext): Promise<RemoteRecord | null>;
  /**
   * Deletes the remote record of an entity deleted locally; a record already gone is no error.
   * Without it, a local delete is recorded as a tombstone in the sync state. With `upsertsByKey`,
   * `change.remoteId` may be null (a create whose answer was lost, or none was ever sent): delete
   * the record found by `change.key`, if there is one.
   */
  delete?(change: Change, context: WriteContext): Promise<void>;
  /**
   * Optional: true when the remote keys the records this writer creates by the entity's own key
   * (`change.key`, sent as the remote's external id), as HubSpot's batch upsert by `idProperty`
   * and Salesforce's upsert by External ID do, for this integration. A create sent again, with
   * any data under any idempotency key, then lands on the same record instead of making a second.
   *
   * tidesync then records no pending create before a create (a create whose answer was lost is
   * simply sent again, and finds its record), which saves a sync-state write per created entity;
   * and a local delete of an entity without a known remote id goes to `delete` with
   * `remoteId: null`, to be deleted by key. Without it (or false), creates are recorded pending
   * first and sent again under their own idempotency key (see `SyncState.pendingCreate`), which
   * also covers a remote that applies a create late, after the writer gave up on it and after a
   * newer create of the entity: the late one is answered from the remote's idempotency records. A
   * create by key applied that late lands last, as an unconditional update does for writers
   * without `read`.
   */
  upsertsByKey?(integration: Integration): boolean;
}

/**
 * The members of a writer that describe it rather than call the remote (`supportsPartialUpdate`,
 * `maxBatchSize`, `upsertsByKey`), for wrappers of a writer to keep.
 */
export function writerTraits(writer: Writer): Pick<Writer, 'supportsPartialUpdate' | 'maxBatchSize' | 'upsertsByKey'> {
  const byKey = writer.upsertsByKey;
  return {
    ...(writer.supportsPartialUpdate !== undefined ? { supportsPartialUpdate: writer.supportsPartialUpdate } : {}),
    ...(writer.maxBatchSize !== undefined ? { maxBatchSize: writer.maxBatchSize } : {}),
    ...(byKey ? { upsertsByKey: (integration: Integration) => byKey.call(writer, integration) } : {}),
  };
}

/** True when `writer` creates by the entity's key on this integration (`Writer.upsertsByKey`). */
export function upsertsByKey(writer: Writer, integration: Integration): boolean {
  return writer.upsertsByKey?.(integration) === true;
}
