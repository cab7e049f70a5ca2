/**
 * What every command starts from: the application's config (checked before anything connects),
 * then tidesync started on the configured servers or a running `tidesync dev` stack.
 */
import { type LoadedConfig, loadConfig } from '../config/load-config';
import { buildRegistries } from '../runtime';
import { type StartOptions, type Tidesync, startTidesync } from '../start';
import { ConfigurationError } from '../errors';

/**
 * Loads the config file and checks it (connectors, job files, service names) without touching a
 * server; errors name the config file.
 */
export async function loadCheckedConfig(options: { required?: boolean } = {}): Promise<LoadedConfig> {
  const loaded = await loadConfig(options);
  try {
    await buildRegistries(loaded.config);
  } catch (err) {
    if (!(err instanceof ConfigurationError) || !loaded.file) throw err;
    throw new ConfigurationError(`${loaded.file}: ${err.message}`, { cause: err });
  }
  return loaded;
}

/** Loads the config and starts tidesync for a command (client only unless `options` say more). */
export async function openCommandContext(options: StartOptions & { requireConfig?: boolean } = {}): Promise<Tidesync> {
  const { config } = await loadCheckedConfig({ required: options.requireConfig ?? false });
  return startTidesync(config, { poolSize: 4, ...options });
}
