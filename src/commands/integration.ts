/** `tidesync integration set|list`: configure integrations without writing SQL. */
import { ConfigurationError } from '../errors';
import { formatRate, parseRate } from '../rate-limit';
import { formatDuration, parseDuration } from '../retry-policy';
import { listIntegrationHealth } from '../store/integration-health';
import { MAX_CONCURRENT_REQUESTS, MAX_REQUESTS_PER_SECOND, MIN_REQUESTS_PER_SECOND, listIntegrations } from '../store/integrations';
import { type RateLimitState, listRateLimits } from '../store/rate-limits';
import { openCommandContext } from './connect';
import { limiterNow } from './status';

/** Options of `integration set`. */
export interface IntegrationSetOptions {
  readonly type: string;
  readonly transport?: string;
  readonly secretRef?: string;
  readonly enabled: boolean;
  readonly twoWay: boolean;
  readonly priority: string;
  /** How long transient failures are retried, e.g. `24h` (default 72h). */
  readonly retryWindow?: string;
  /** While degraded, one probe per this interval, e.g. `30s`. */
  readonly probeInterval?: string;
  /** Failed remote calls in a row that trip the breaker. */
  readonly breakerThreshold?: string;
  /** Requests the remote allows, e.g. `20/s` or `600/min` (default unlimited). */
  readonly rateLimit?: string;
  /** Requests the remote allows in flight at once (default unlimited). */
  readonly maxConcurrent?: string;
}

/** `--rate-limit` as requests per second; the error names the option and the value. */
function rateOption(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  let rate: number;
  try {
    rate = parseRate(value, '--rate-limit');
  } catch (err) {
    throw new ConfigurationError((err as Error).message);
  }
  if (rate < MIN_REQUESTS_PER_SECOND || rate > MAX_REQUESTS_PER_SECOND) {
    throw new ConfigurationError(`--rate-limit '${value}' is out of range: use 1/h to ${MAX_REQUESTS_PER_SECOND}/s`);
  }
  return rate;
}

/** `--max-concurrent` as a number; the error names the option and the value. */
function concurrencyOption(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!(n >= 1 && n <= MAX_CONCURRENT_REQUESTS)) {
    throw new ConfigurationError(
      `--max-concurrent '${value}' must be a whole number of requests from 1 to ${MAX_CONCURRENT_REQUESTS}, e.g. 4`,
    );
  }
  return n;
}

/** A duration option as milliseconds; the error names the option and the value. */
function durationOption(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  try {
    return parseDuration(value, flag);
  } catch (err) {
    throw new ConfigurationError((err as Error).message);
  }
}

/** Creates or updates an integration. */
export async function integrationSetCommand(name: string, options: IntegrationSetOptions): Promise<number> {
  let transport: Record<string, unknown> = {};
  if (options.transport) {
    try {
      transport = JSON.parse(options.transport) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigurationError(`--transport ${JSON.stringify(options.transport)} is not JSON: ${(err as Error).message}`);
    }
    if (transport === null || typeof transport !== 'object' || Array.isArray(transport)) {
      throw new ConfigurationError(`--transport ${JSON.stringify(options.transport)} must be a JSON object`);
    }
  }
  if (options.priority !== 'local' && options.priority !== 'remote') {
    throw new ConfigurationError(`--priority '${options.priority}' must be 'local' or 'remote'`);
  }
  const retryWindowMs = durationOption('--retry-window', options.retryWindow);
  const probeIntervalMs = durationOption('--probe-interval', options.probeInterval);
  const threshold = options.breakerThreshold;
  if (threshold !== undefined && !/^\d+$/.test(threshold)) {
    throw new ConfigurationError(`--breaker-threshold '${threshold}' must be a whole number of failed calls, e.g. 10`);
  }
  const requestsPerSecond = rateOption(options.rateLimit) ?? null;
  const maxConcurrent = concurrencyOption(options.maxConcurrent) ?? null;
  const ctx = await openCommandContext();
  try {
    const integration = await ctx.client.upsertIntegration({
      ...(retryWindowMs !== undefined ? { retryWindowMs } : {}),
      ...(probeIntervalMs !== undefined ? { probeIntervalMs } : {}),
      ...(threshold !== undefined ? { breakerThreshold: Number(threshold) } : {}),
      name,
      type: options.type,
      transport,
      secretRef: options.secretRef ?? null,
      enabled: options.enabled,
      twoWaySync: options.twoWay,
      syncPriority: options.priority,
      rateLimit: { requestsPerSecond, maxConcurrent },
    });
    console.log(JSON.stringify(integration));
    return 0;
  } finally {
    await ctx.close();
  }
}

/** ` (now 10/s, ...)` when the limiter is not simply at the declared limit. */
function note(state: RateLimitState | undefined): string {
  const now = state ? limiterNow(state) : null;
  return now ? ` (${now})` : '';
}

/**
 * Lists integrations with their breaker state and rate limits (secrets are never stored, only
 * their references).
 */
export async function integrationListCommand(options: { json: boolean } = { json: false }): Promise<number> {
  const ctx = await openCommandContext();
  try {
    const health = new Map((await listIntegrationHealth(ctx.store)).map((h) => [h.integration, h]));
    const limits = new Map((await listRateLimits(ctx.store)).map((l) => [l.integration, l]));
    const rows = (await listIntegrations(ctx.store)).map((r) => {
      const l = limits.get(r.name);
      const limiter = {
        currentRate: l?.currentRate ?? null,
        pausedUntil: l?.pausedUntil ?? null,
        throttles: l?.throttles ?? 0,
        lastThrottledAt: l?.lastThrottledAt ?? null,
      };
      return { ...r, breaker: health.get(r.name)?.state ?? 'healthy', limiter };
    });
    if (options.json) {
      console.log(JSON.stringify(rows));
      return 0;
    }
    for (const r of rows) {
      console.log(
        `${r.name}\t${r.type}\t${r.enabled ? 'enabled' : 'disabled'}\ttwo-way=${r.twoWaySync}\tpriority=${r.syncPriority}\t` +
          `retry-window=${formatDuration(r.retryWindowMs)} probe-interval=${formatDuration(r.probeIntervalMs)} ` +
          `breaker=${r.breaker} (trips after ${r.breakerThreshold})\t` +
          `rate-limit=${formatRate(r.rateLimit.requestsPerSecond)} max-concurrent=${r.rateLimit.maxConcurrent ?? 'unlimited'}` +
          `${note(limits.get(r.name))}\t${JSON.stringify(r.transport)}\t${r.secretRef ?? ''}`,
      );
    }
    return 0;
  } finally {
    await ctx.close();
  }
}
