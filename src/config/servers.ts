/**
 * Where the servers are: the config file and the environment (`DATABASE_URL`, Temporal's own
 * `TEMPORAL_*` variables and profiles), else a `tidesync dev` stack running on this machine.
 */
import { ConfigurationError } from '../errors';
import { type ResolvedTemporal, resolveTemporalSettings } from '../temporal/connection';
import type { TidesyncConfig } from './define-config';

/** The task queue tidesync's workers poll unless configured otherwise. */
export const DEFAULT_TASK_QUEUE = 'tidesync';

/** The servers one process talks to. */
export interface Servers {
  readonly databaseUrl: string;
  readonly temporal: ResolvedTemporal;
  /** The Temporal Web UI, when a dev stack serves it. */
  readonly uiUrl: string | null;
}

/** The task queue: `TIDESYNC_TASK_QUEUE`, else the config's, else `tidesync`. */
export function taskQueueOf(config: TidesyncConfig, env: NodeJS.ProcessEnv = process.env): string {
  return env['TIDESYNC_TASK_QUEUE'] || config.taskQueue || DEFAULT_TASK_QUEUE;
}

/** Resolves both servers, falling back to a running dev stack for what is not configured. */
export async function resolveServers(config: TidesyncConfig, env: NodeJS.ProcessEnv = process.env): Promise<Servers> {
  const configuredDb = env['DATABASE_URL'] || config.database?.url;
  const configuredTemporal = await resolveTemporalSettings(config.temporal, env);
  // The dev stack's code loads only when it may be needed.
  const dev = configuredDb && configuredTemporal ? null : await (await import('../stack/dev-stack')).readDevStackFile();
  const databaseUrl = configuredDb ?? dev?.databaseUrl;
  const temporal =
    configuredTemporal ??
    (dev ? await resolveTemporalSettings({ ...config.temporal, address: dev.temporalAddress, namespace: dev.namespace }, {}) : null);
  if (!databaseUrl || !temporal) {
    throw new ConfigurationError(
      `no ${!databaseUrl ? 'database' : 'Temporal server'} configured: set ${!databaseUrl ? 'DATABASE_URL (or database.url in the config)' : 'TEMPORAL_ADDRESS (or temporal.address in the config)'}, ` +
        'or start the embedded stack with `tidesync dev` in another terminal',
    );
  }
  return { databaseUrl, temporal, uiUrl: configuredTemporal ? null : (dev?.uiUrl ?? null) };
}
