/**
 * Merges where Temporal connection settings can come from, reading Temporal's own sources (the
 * TOML profile file, TEMPORAL_* variables) through @temporalio/envconfig, as Temporal's tools do.
 */
import { access, constants } from 'node:fs/promises';
import { type ClientConfigProfile, type ClientConfigTLS, loadClientConfigProfile, toClientOptions } from '@temporalio/envconfig';
import type { NativeConnectionOptions } from '@temporalio/worker';
import { resolveSecret } from '../secrets';
import { ConfigurationError } from '../errors';
import { parseTemporalSettings, type TemporalSettings } from './settings';

/**
 * Options both `NativeConnection.connect` (worker) and `Connection.connect` (client) accept: the
 * SDKs share `TLSConfig` and `Metadata`, and the client's `apiKey` also takes the worker's string.
 */
export type TemporalConnectionOptions = Pick<NativeConnectionOptions, 'tls' | 'apiKey' | 'metadata'> & {
  readonly address: string;
};

/** Where and how to reach Temporal, once every source is merged. */
export interface ResolvedTemporal {
  /** Frontend `host:port`. */
  readonly address: string;
  /** Namespace; `default` unless configured. */
  readonly namespace: string;
  /** For `NativeConnection.connect` and `Connection.connect` alike. */
  readonly connectionOptions: TemporalConnectionOptions;
  /** Whether the connection uses TLS (set explicitly, or implied by an API key). */
  readonly secure: boolean;
}

/** The TLS files a profile may name, with the name of each in every source (for messages). */
const TLS_FILES = {
  serverCACert: { setting: 'tls.serverCaCertFile', env: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH', toml: 'tls.server_ca_cert_path' },
  clientCert: { setting: 'tls.clientCertFile', env: 'TEMPORAL_TLS_CLIENT_CERT_PATH', toml: 'tls.client_cert_path' },
  clientKey: { setting: 'tls.clientKeyFile', env: 'TEMPORAL_TLS_CLIENT_KEY_PATH', toml: 'tls.client_key_path' },
} as const;
type TlsFile = keyof typeof TLS_FILES;

/** One source of settings and how to name its fields in an error. */
interface Layer {
  readonly profile: ClientConfigProfile;
  readonly name: (file: TlsFile) => string;
}

// Empty variables count as unset, as everywhere in tidesync: envconfig would take TEMPORAL_TLS=''
// for "TLS off" and TEMPORAL_ADDRESS='' for an address.
function nonEmptyEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => !!entry[1]));
}

function fromSettings(settings: TemporalSettings, apiKey: string | undefined): ClientConfigProfile {
  const { tls } = settings;
  const tlsConfig: ClientConfigTLS | undefined =
    tls === undefined
      ? undefined
      : typeof tls === 'boolean'
        ? { disabled: !tls }
        : {
            disabled: false,
            ...(tls.serverName ? { serverName: tls.serverName } : {}),
            ...(tls.serverCaCertFile ? { serverCACert: { path: tls.serverCaCertFile } } : {}),
            ...(tls.clientCertFile ? { clientCert: { path: tls.clientCertFile } } : {}),
            ...(tls.clientKeyFile ? { clientKey: { path: tls.clientKeyFile } } : {}),
          };
  return {
    ...(settings.address ? { address: settings.address } : {}),
    ...(settings.namespace ? { namespace: settings.namespace } : {}),
    ...(apiKey ? { apiKey } : {}),
    ...(tlsConfig ? { tls: tlsConfig } : {}),
  };
}

// Field by field, as envconfig itself lays TEMPORAL_* variables over a profile; a file given as
// data in one layer and as a path in the next is simply replaced.
function overlay(base: ClientConfigProfile, top: ClientConfigProfile): ClientConfigProfile {
  const merged: ClientConfigProfile = { ...base, ...top };
  if (base.tls || top.tls) merged.tls = { ...base.tls, ...top.tls };
  if (base.grpcMeta || top.grpcMeta) merged.grpcMeta = { ...base.grpcMeta, ...top.grpcMeta };
  return merged;
}

function loadProfile<T>(what: string, load: () => T): T {
  try {
    return load();
  } catch (err) {
    throw new ConfigurationError(`${what}: ${(err as Error).message}`, { cause: err });
  }
}

async function requireFile(field: string, file: string): Promise<void> {
  try {
    await access(file, constants.R_OK);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${(err as Error).message})`;
    throw new ConfigurationError(`${field}: file '${file}' ${reason}`, { cause: err });
  }
}

async function checkTlsFiles(tls: ClientConfigTLS, layers: readonly Layer[]): Promise<void> {
  // The last layer that set a file is the one whose field the message must name.
  const layerOf = (file: TlsFile) => [...layers].reverse().find((l) => l.profile.tls?.[file] !== undefined);
  const nameOf = (file: TlsFile) => layerOf(file)?.name(file) ?? file;
  for (const file of Object.keys(TLS_FILES) as TlsFile[]) {
    const source = tls[file];
    if (source && 'path' in source) await requireFile(nameOf(file), source.path);
  }
  // envconfig drops a certificate without its key (or a key without its certificate) silently.
  if (!tls.clientCert !== !tls.clientKey) {
    const [given, missing] = tls.clientCert ? (['clientCert', 'clientKey'] as const) : (['clientKey', 'clientCert'] as const);
    const layer = layerOf(given);
    throw new ConfigurationError(
      `${nameOf(given)} is set but ${layer?.name(missing) ?? missing} is not: a client certificate needs its key`,
    );
  }
}

/**
 * Merges, in increasing precedence, the Temporal config file's profile, the tidesync `settings`
 * and the TEMPORAL_* variables of `env` (TEMPORAL_PROFILE and TEMPORAL_CONFIG_FILE, too, win over
 * `settings.profile` and `settings.configFile`). Returns null when no source names an address:
 * the caller then falls back to a local dev stack. TLS files are read here, once.
 */
export async function resolveTemporalSettings(
  settings: TemporalSettings | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ResolvedTemporal | null> {
  const own = parseTemporalSettings(settings ?? {});
  const vars = nonEmptyEnv(env);
  const configFile = vars['TEMPORAL_CONFIG_FILE'] ?? own.configFile;
  const configField = vars['TEMPORAL_CONFIG_FILE'] ? 'TEMPORAL_CONFIG_FILE' : 'configFile';
  const profileName = vars['TEMPORAL_PROFILE'] ?? own.profile;
  // envconfig ignores a config file that does not exist, even one named explicitly.
  if (configFile) await requireFile(configField, configFile);

  const fileLabel = `temporal config file${configFile ? ` '${configFile}'` : ''} profile '${profileName ?? 'default'}'`;
  const fileProfile = loadProfile(fileLabel, () =>
    loadClientConfigProfile({
      ...(profileName ? { profile: profileName } : {}),
      ...(configFile ? { configSource: { path: configFile } } : {}),
      disableEnv: true,
      overrideEnvVars: vars,
    }),
  );
  const apiKey = own.apiKeyRef ? await resolveSecret(own.apiKeyRef, env) : own.apiKey;
  const envProfile = loadProfile('TEMPORAL_* variables', () => loadClientConfigProfile({ disableFile: true, overrideEnvVars: vars }));
  const layers: Layer[] = [
    { profile: fileProfile, name: (file) => `${fileLabel} ${TLS_FILES[file].toml}` },
    { profile: fromSettings(own, apiKey), name: (file) => TLS_FILES[file].setting },
    { profile: envProfile, name: (file) => TLS_FILES[file].env },
  ];
  const profile = layers.map((l) => l.profile).reduce(overlay);
  const address = profile.address;
  if (!address) return null;
  if (profile.tls && !profile.tls.disabled) await checkTlsFiles(profile.tls, layers);

  const { connectionOptions, namespace } = loadProfile(`temporal at '${address}'`, () => toClientOptions(profile));
  const { tls, apiKey: key, metadata } = connectionOptions;
  return {
    address,
    namespace: namespace ?? 'default',
    connectionOptions: {
      address,
      ...(tls !== undefined ? { tls } : {}),
      ...(key !== undefined ? { apiKey: key } : {}),
      ...(metadata !== undefined ? { metadata } : {}),
    },
    secure: !!tls,
  };
}
