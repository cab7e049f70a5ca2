/**
 * tidesync: durable reverse synchronization. What `require('tidesync')` gives an application:
 * its configuration, the connector contract, the outbox, the client, the worker and the errors.
 */
import type { Worker } from '@temporalio/worker';
import type { CreateWorkerOptions } from './worker';

// Configuration
export { defineConfig, validateConfig } from './config/define-config';
export type { DevContext, DevHook, DevResult, TidesyncConfig } from './config/define-config';
export { CONFIG_ENV, CONFIG_FILE_NAMES, findConfigFile, loadConfig } from './config/load-config';
export type { LoadConfigOptions, LoadedConfig } from './config/load-config';
export { DEFAULT_TASK_QUEUE } from './config/servers';
export type { Servers } from './config/servers';
export type { TemporalSettings } from './temporal/settings';
export { resolveTemporalSettings } from './temporal/connection';
export type { ResolvedTemporal } from './temporal/connection';

// Encrypting what goes into Temporal's history
export { AesGcmCodec, ENCRYPTED_ENCODING, KEY_ID_METADATA } from './codec/aes-gcm-codec';
export { CODEC_FAILURE_CONVERTER_PATH, codecDataConverter, createCodec } from './codec/data-converter';
export { parseKey } from './codec/keys';
export type { CodecKey } from './codec/keys';
export type { CodecKeySettings, CodecSettings } from './codec/settings';
export { DEFAULT_CODEC_SERVER_PORT, startCodecServer } from './codec/codec-server';
export type { CodecServer, CodecServerOptions } from './codec/codec-server';

// One wiring
export { startTidesync } from './start';
export type { StartOptions, Tidesync } from './start';

// The connector contract
export type {
  BatchItemError,
  BatchItemFailure,
  BatchItemResult,
  BatchItemSuccess,
  Change,
  Connector,
  ConnectorEntity,
  Entity,
  Integration,
  ProcessContext,
  ProcessResult,
  Processor,
  PendingCreate,
  RateLimit,
  ReadResult,
  Reader,
  RemoteRecord,
  StepParameters,
  SyncPriority,
  SyncState,
  WriteContext,
  WriteResult,
  Writer,
} from './connectors/connector';
export {
  ENTITY_BY_ID_READER,
  EntityByIdReader,
  ORO_ENTITY_BY_ID_READER,
  isEntityByIdReader,
} from './connectors/readers/entity-by-id-reader';
export { ConnectorRegistry } from './connectors/registry';
export { ServiceRegistry } from './jobs/service-registry';
export type { JobDefinition, StepDefinition } from './jobs/definition';
// A step's `write_back` (remote ids into the local rows), for code that writes records itself.
export { writeBackRemoteIds } from './store/write-back';
export { encodeEntityId, parseEntityId } from './entity-id';
export type { EntityId, IdValue } from './entity-id';
export { resolveSecret } from './secrets';
export { tidesyncHome } from './stack/paths';
export type { SecretResolver } from './secrets';

// Errors
export {
  CodecError,
  ConfigurationError,
  IntegrationDegradedError,
  IntegrationThrottledError,
  NON_RETRYABLE_ERROR_TYPES,
  PermanentRemoteError,
  RateLimitedError,
  RemoteNotFoundError,
  RemoteVersionConflictError,
  TidesyncError,
  TransientRemoteError,
  parseRetryAfter,
} from './errors';

// Starting exports from the application
export { enqueueExport, enqueueExports, OUTBOX_CHANNEL } from './outbox/enqueue';
export type { AppTransaction, EnqueueOptions, OutboxBatch, OutboxRequest, PgQueryable } from './outbox/enqueue';
export { TidesyncClient, exportWorkflowId, streamWorkflowId } from './client';
export type { StreamedChange } from './client';
export type { StreamStatus } from './workflows/signals';
export type {
  ExportOutcome,
  ExportRequest,
  FailureQuery,
  RefusedExport,
  ScheduleResult,
  ScheduledExport,
  TidesyncClientOptions,
} from './client';
export type { FailedRecord } from './store/failures';
export type { IntegrationHealth } from './store/integration-health';
export type { RateLimitState } from './store/rate-limits';
export { formatRate, parseRate } from './rate-limit';
export {
  BREAKER_FAILURE_GAP_MS,
  DEFAULT_BREAKER_THRESHOLD,
  DEFAULT_PROBE_INTERVAL_MS,
  DEFAULT_RETRY_WINDOW_MS,
  formatDuration,
  parseDuration,
} from './retry-policy';
export type { IntegrationSettings } from './store/integrations';
export type { EntitySyncState } from './store/sync-state';
export type { JobExecution } from './store/executions';
// Bulk exports (client.startBulkExport and friends)
export type { BulkMode, BulkScope } from './activities/bulk-types';
export { MAX_BULK_IDS, MAX_BULK_PAGE_SIZE, MAX_BULK_PARALLELISM, bulkWorkflowId } from './bulk-exports';
export type { BulkExportRequest, BulkExportSummary, StartedBulkExport } from './bulk-exports';
export type { BulkExportResult, BulkProgress } from './workflows/bulk-definitions';
export {
  BULK_PAGES_PER_RUN,
  BULK_PLAN_AHEAD,
  DEFAULT_BULK_PAGE_SIZE,
  DEFAULT_BULK_PARALLELISM,
  MIN_FITTED_BULK_PAGE_SIZE,
  bulkHistoryBound,
  fitPageSize,
} from './workflows/options';
export { OutboxRelay } from './outbox/relay';
export type { ExportScheduler, OutboxRelayOptions } from './outbox/relay';
export { installCapture, removeCapture } from './outbox/capture';
export type { CaptureInstallation, CaptureOptions } from './outbox/capture';

// Running
export { buildRegistries, createRuntime } from './runtime';
export type { Registries, Runtime, RuntimeOptions } from './runtime';
export { DEFAULT_SCHEMA, openDatabases, storeDb } from './store/db';
export type { Databases } from './store/db';
export { migrateToLatest } from './store/migrations';
export type { ExportInput, ExportResult } from './workflows';
export type { CreateWorkerOptions } from './worker';
export { SEARCH_ATTRIBUTES } from './search-attributes';

/** Creates (but does not run) a worker; loads the Temporal worker SDK only when called. */
export async function createWorker(options: CreateWorkerOptions): Promise<Worker> {
  const { createWorker: create } = await import('./worker');
  return create(options);
}
