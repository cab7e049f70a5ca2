/** `tidesync integration set|list`: configure integrations without writing SQL. */
import { ConfigurationError } from '../errors';
import { formatDuration, parseDuration } from '../retry-policy';
import { listIntegrationHealth } from '../store/integration-health';
import { listIntegrations } from '../store/integrations';
import { openCommandContext } from './connect';

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
    });
    console.log(JSON.stringify(integration));
    return 0;
  } finally {
    await ctx.close();
  }
}

/** Lists integrations with their breaker state (secrets are never stored, only their references). */
export async function integrationListCommand(options: { json: boolean } = { json: false }): Promise<number> {
  const ctx = await openCommandContext();
  try {
    const health = new Map((await listIntegrationHealth(ctx.store)).map((h) => [h.integration, h]));
    const rows = (await listIntegrations(ctx.store)).map((r) => ({ ...r, breaker: health.get(r.name)?.state ?? 'healthy' }));
    if (options.json) {
      console.log(JSON.stringify(rows));
      return 0;
    }
    for (const r of rows) {
      console.log(
        `${r.name}\t${r.type}\t${r.enabled ? 'enabled' : 'disabled'}\ttwo-way=${r.twoWaySync}\tpriority=${r.syncPriority}\t` +
          `retry-window=${formatDuration(r.retryWindowMs)} probe-interval=${formatDuration(r.probeIntervalMs)} ` +
          `breaker=${r.breaker} (trips after ${r.breakerThreshold})\t${JSON.stringify(r.transport)}\t${r.secretRef ?? ''}`,
      );
    }
    return 0;
  } finally {
    await ctx.close();
  }
}
