/** `tidesync integration set|list`: configure integrations without writing SQL. */
import { ConfigurationError } from '../errors';
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
  const ctx = await openCommandContext();
  try {
    const integration = await ctx.client.upsertIntegration({
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

/** Lists integrations (secrets are never stored, only their references). */
export async function integrationListCommand(): Promise<number> {
  const ctx = await openCommandContext();
  try {
    for (const r of await listIntegrations(ctx.store)) {
      console.log(
        `${r.name}\t${r.type}\t${r.enabled ? 'enabled' : 'disabled'}\ttwo-way=${r.twoWaySync}\tpriority=${r.syncPriority}\t${JSON.stringify(r.transport)}\t${r.secretRef ?? ''}`,
      );
    }
    return 0;
  } finally {
    await ctx.close();
  }
}
