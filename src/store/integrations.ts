/** Reads and writes integration settings (`tidesync.integration`). */
import type { Kysely, Selectable } from 'kysely';
import type { Integration, RateLimit, SyncPriority } from '../connectors/connector';
import { ConfigurationError } from '../errors';
import {
  DEFAULT_BREAKER_THRESHOLD,
  DEFAULT_PROBE_INTERVAL_MS,
  DEFAULT_RETRY_WINDOW_MS,
  MAX_RETRY_WINDOW_MS,
  formatDuration,
} from '../retry-policy';
import type { IntegrationTable, TidesyncDatabase } from './schema';

/** The longest probe interval accepted: a down remote must still be checked once an hour. */
const MAX_PROBE_INTERVAL_MS = 60 * 60 * 1000;

/** The highest request rate accepted: beyond it one PostgreSQL row per request is the bottleneck, not the remote. */
export const MAX_REQUESTS_PER_SECOND = 1_000;

/** The lowest request rate accepted: one request an hour. */
export const MIN_REQUESTS_PER_SECOND = 1 / 3600;

/** The most concurrent requests accepted: each one in flight holds a PostgreSQL connection (see `request-slots.ts`). */
export const MAX_CONCURRENT_REQUESTS = 1_000;

/** An integration's row as the `Integration` the engine works with. */
export function toIntegration(row: Selectable<IntegrationTable>): Integration {
  return {
    id: row.id,
    type: row.type,
    name: row.name,
    enabled: row.enabled,
    twoWaySync: row.two_way_sync,
    syncPriority: row.sync_priority,
    transport: row.transport,
    secretRef: row.secret_ref,
    retryWindowMs: Number(row.retry_window_ms),
    probeIntervalMs: row.probe_interval_ms,
    breakerThreshold: row.breaker_threshold,
    rateLimit: { requestsPerSecond: row.rate_limit_rps, maxConcurrent: row.max_concurrent },
  };
}

/** The integration called `name`, or a `ConfigurationError` listing the configured ones. */
export async function getIntegration(db: Kysely<TidesyncDatabase>, name: string): Promise<Integration> {
  const row = await db.selectFrom('integration').selectAll().where('name', '=', name).executeTakeFirst();
  if (row) return toIntegration(row);
  const names = await db.selectFrom('integration').select('name').orderBy('name').execute();
  throw new ConfigurationError(`unknown integration '${name}' (configured: ${names.map((n) => n.name).join(', ') || 'none'})`);
}

/** Why an integration's settings refuse exports, or null when they allow them. */
export function refusalReason(integration: Integration): string | null {
  if (!integration.enabled) return `integration '${integration.name}' is disabled`;
  if (!integration.twoWaySync) return `integration '${integration.name}' has two-way sync turned off`;
  return null;
}

/** Settings of an integration to create or update. */
export interface IntegrationSettings {
  readonly type: string;
  readonly name: string;
  readonly enabled?: boolean;
  readonly twoWaySync?: boolean;
  readonly syncPriority?: SyncPriority;
  readonly transport?: Record<string, unknown>;
  readonly secretRef?: string | null;
  /** How long transient failures of one change are retried before it is marked failed; default 72 h. */
  readonly retryWindowMs?: number;
  /** While the integration is degraded, one probe write per this interval; default 30 s. */
  readonly probeIntervalMs?: number;
  /** Failed remote calls in a row that trip the breaker; default 10. */
  readonly breakerThreshold?: number;
  /** What the remote allows (requests a second, in flight at once), across every worker; default unlimited. */
  readonly rateLimit?: Partial<RateLimit>;
}

/** Checks an integration's rate limit; errors name the setting and the value. */
export function checkRateLimit(name: string, limit: Partial<RateLimit> | undefined): void {
  const where = `integration '${name}'`;
  const rps = limit?.requestsPerSecond;
  if (rps !== undefined && rps !== null && !(Number.isFinite(rps) && rps >= MIN_REQUESTS_PER_SECOND && rps <= MAX_REQUESTS_PER_SECOND)) {
    throw new ConfigurationError(
      `${where}: rate limit ${String(rps)} requests/s is not valid: use one an hour (${MIN_REQUESTS_PER_SECOND.toPrecision(3)}) ` +
        `to ${MAX_REQUESTS_PER_SECOND} a second, or null for unlimited`,
    );
  }
  const concurrent = limit?.maxConcurrent;
  if (
    concurrent !== undefined &&
    concurrent !== null &&
    !(Number.isInteger(concurrent) && concurrent >= 1 && concurrent <= MAX_CONCURRENT_REQUESTS)
  ) {
    throw new ConfigurationError(
      `${where}: max concurrent requests ${String(concurrent)} is not valid: use a whole number from 1 to ${MAX_CONCURRENT_REQUESTS}, or null for unlimited`,
    );
  }
}

/** Checks the retry and breaker settings; errors name the setting and the value. */
export function checkRetrySettings(
  settings: Pick<IntegrationSettings, 'name' | 'retryWindowMs' | 'probeIntervalMs' | 'breakerThreshold'>,
): void {
  const where = `integration '${settings.name}'`;
  const window = settings.retryWindowMs;
  if (window !== undefined && (!Number.isInteger(window) || window < 1000 || window > MAX_RETRY_WINDOW_MS)) {
    throw new ConfigurationError(
      `${where}: retry window ${window} ms is not valid: use 1s to ${formatDuration(MAX_RETRY_WINDOW_MS)} (whole milliseconds)`,
    );
  }
  const probe = settings.probeIntervalMs;
  if (probe !== undefined && (!Number.isInteger(probe) || probe < 100 || probe > MAX_PROBE_INTERVAL_MS)) {
    throw new ConfigurationError(
      `${where}: probe interval ${probe} ms is not valid: use 100ms to ${formatDuration(MAX_PROBE_INTERVAL_MS)} (whole milliseconds)`,
    );
  }
  const threshold = settings.breakerThreshold;
  if (threshold !== undefined && (!Number.isInteger(threshold) || threshold < 1 || threshold > 10_000)) {
    throw new ConfigurationError(`${where}: breaker threshold ${threshold} is not valid: use a whole number from 1 to 10000`);
  }
}

/** Creates the integration, or updates it when one with that name exists (omitted settings get their defaults). */
export async function upsertIntegration(db: Kysely<TidesyncDatabase>, settings: IntegrationSettings): Promise<Integration> {
  checkRetrySettings(settings);
  checkRateLimit(settings.name, settings.rateLimit);
  const values = {
    type: settings.type,
    enabled: settings.enabled ?? true,
    two_way_sync: settings.twoWaySync ?? true,
    sync_priority: settings.syncPriority ?? 'local',
    transport: JSON.stringify(settings.transport ?? {}),
    secret_ref: settings.secretRef ?? null,
    retry_window_ms: settings.retryWindowMs ?? DEFAULT_RETRY_WINDOW_MS,
    probe_interval_ms: settings.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS,
    breaker_threshold: settings.breakerThreshold ?? DEFAULT_BREAKER_THRESHOLD,
    rate_limit_rps: settings.rateLimit?.requestsPerSecond ?? null,
    max_concurrent: settings.rateLimit?.maxConcurrent ?? null,
  };
  const row = await db
    .insertInto('integration')
    .values({ name: settings.name, ...values })
    .onConflict((oc) => oc.column('name').doUpdateSet({ ...values, updated_at: new Date() }))
    .returningAll()
    .executeTakeFirstOrThrow();
  return toIntegration(row);
}

/** Every configured integration, by name. */
export async function listIntegrations(db: Kysely<TidesyncDatabase>): Promise<Integration[]> {
  const rows = await db.selectFrom('integration').selectAll().orderBy('name').execute();
  return rows.map(toIntegration);
}
