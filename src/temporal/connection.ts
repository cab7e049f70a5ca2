/**
 * Temporal connection settings. PLACEHOLDER until the envconfig-based resolver lands: address and
 * namespace only.
 */
import type { NativeConnectionOptions } from '@temporalio/worker';
import { Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { TemporalSettings } from './settings';

/** A Temporal cluster to connect to. */
export interface ResolvedTemporal {
  readonly address: string;
  readonly namespace: string;
  readonly connectionOptions: NativeConnectionOptions;
  readonly secure: boolean;
}

/** Settings merged with the environment; null when no address is known. */
export async function resolveTemporalSettings(settings: TemporalSettings | undefined, env: NodeJS.ProcessEnv = process.env): Promise<ResolvedTemporal | null> {
  const address = env['TEMPORAL_ADDRESS'] || settings?.address;
  if (!address) return null;
  return { address, namespace: env['TEMPORAL_NAMESPACE'] || settings?.namespace || 'default', connectionOptions: { address }, secure: false };
}

/** The worker's connection. */
export async function connectWorkerConnection(resolved: ResolvedTemporal): Promise<NativeConnection> {
  return NativeConnection.connect(resolved.connectionOptions);
}

/** The client's connection. */
export async function connectClientConnection(resolved: ResolvedTemporal): Promise<Connection> {
  return Connection.connect({ address: resolved.address });
}
