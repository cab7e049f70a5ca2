/** How `resolveTemporalSettings` merges the Temporal profile file, tidesync settings and TEMPORAL_* variables. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigurationError } from '../src/errors';
import { resolveTemporalSettings } from '../src/temporal/connection';

const PROFILES = `
[profile.default]
address = "default.example:7233"
namespace = "from-default-profile"

[profile.staging]
address = "staging.example:7233"
namespace = "from-staging-profile"
api_key = "staging-key"
`;

describe('resolveTemporalSettings', () => {
  let dir: string;
  let configFile: string;
  let caFile: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tidesync-temporal-settings-'));
    configFile = path.join(dir, 'temporal.toml');
    caFile = path.join(dir, 'ca.pem');
    await writeFile(configFile, PROFILES);
    await writeFile(caFile, '-----BEGIN CERTIFICATE-----\nnot checked here\n-----END CERTIFICATE-----\n');
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('should return null when no source names an address', async () => {
    await expect(resolveTemporalSettings(undefined, {})).resolves.toBeNull();
    await expect(resolveTemporalSettings({ namespace: 'ns', tls: true }, { TEMPORAL_NAMESPACE: 'ns' })).resolves.toBeNull();
    // An empty variable counts as unset.
    await expect(resolveTemporalSettings(undefined, { TEMPORAL_ADDRESS: '' })).resolves.toBeNull();
  });

  it('should default to plaintext and the default namespace', async () => {
    await expect(resolveTemporalSettings({ address: 'a:1' }, {})).resolves.toEqual({
      address: 'a:1',
      namespace: 'default',
      connectionOptions: { address: 'a:1' },
      secure: false,
    });
  });

  it('should let settings win over the profile file, and TEMPORAL_* variables over both', async () => {
    const fileOnly = await resolveTemporalSettings({ configFile }, {});
    expect(fileOnly).toMatchObject({ address: 'default.example:7233', namespace: 'from-default-profile', secure: false });

    const settings = await resolveTemporalSettings({ configFile, address: 'settings.example:7233' }, {});
    expect(settings).toMatchObject({ address: 'settings.example:7233', namespace: 'from-default-profile' });

    const env = await resolveTemporalSettings(
      { configFile, address: 'settings.example:7233', namespace: 'from-settings' },
      { TEMPORAL_ADDRESS: 'env.example:7233' },
    );
    expect(env).toMatchObject({ address: 'env.example:7233', namespace: 'from-settings' });
    expect(env?.connectionOptions.address).toBe('env.example:7233');
  });

  it('should read the profile that settings choose, unless TEMPORAL_PROFILE chooses another', async () => {
    const staging = await resolveTemporalSettings({ configFile, profile: 'staging' }, {});
    // An API key turns TLS on, as in Temporal's own tools.
    expect(staging).toMatchObject({ address: 'staging.example:7233', namespace: 'from-staging-profile', secure: true });
    expect(staging?.connectionOptions).toMatchObject({ apiKey: 'staging-key', tls: true });

    const chosenByEnv = await resolveTemporalSettings({ configFile, profile: 'staging' }, { TEMPORAL_PROFILE: 'default' });
    expect(chosenByEnv?.address).toBe('default.example:7233');

    const viaEnvFile = await resolveTemporalSettings(undefined, { TEMPORAL_CONFIG_FILE: configFile, TEMPORAL_PROFILE: 'staging' });
    expect(viaEnvFile?.address).toBe('staging.example:7233');
  });

  it('should pass an API key from TEMPORAL_API_KEY or from a secret reference', async () => {
    const fromEnv = await resolveTemporalSettings({ address: 'a:1' }, { TEMPORAL_API_KEY: 'env-key' });
    expect(fromEnv).toMatchObject({ secure: true, connectionOptions: { address: 'a:1', apiKey: 'env-key', tls: true } });

    const fromRef = await resolveTemporalSettings({ address: 'a:1', apiKeyRef: 'env:MY_TEMPORAL_KEY' }, { MY_TEMPORAL_KEY: 'ref-key' });
    expect(fromRef?.connectionOptions.apiKey).toBe('ref-key');

    const overridden = await resolveTemporalSettings({ address: 'a:1', apiKey: 'settings-key' }, { TEMPORAL_API_KEY: 'env-key' });
    expect(overridden?.connectionOptions.apiKey).toBe('env-key');
  });

  it('should read TLS files and let TEMPORAL_TLS turn TLS off', async () => {
    const secure = await resolveTemporalSettings(
      { address: 'a:1', tls: { serverCaCertFile: caFile, serverName: 'temporal.internal' } },
      {},
    );
    expect(secure?.secure).toBe(true);
    expect(secure?.connectionOptions.tls).toMatchObject({ serverNameOverride: 'temporal.internal' });
    const tls = secure?.connectionOptions.tls;
    expect(typeof tls === 'object' && Buffer.from(tls?.serverRootCACertificate ?? []).toString()).toMatch(/not checked here/);

    const off = await resolveTemporalSettings({ address: 'a:1', tls: { serverCaCertFile: caFile } }, { TEMPORAL_TLS: 'false' });
    expect(off).toMatchObject({ secure: false, connectionOptions: { tls: false } });
  });

  it.each([
    [
      'a CA file from settings',
      { address: 'a:1', tls: { serverCaCertFile: '/nonexistent/ca.pem' } },
      {},
      "tls.serverCaCertFile: file '/nonexistent/ca.pem' does not exist",
    ],
    [
      'a CA file from the environment',
      { address: 'a:1' },
      { TEMPORAL_TLS_SERVER_CA_CERT_PATH: '/nonexistent/ca.pem' },
      "TEMPORAL_TLS_SERVER_CA_CERT_PATH: file '/nonexistent/ca.pem' does not exist",
    ],
    ['a config file', { configFile: '/nonexistent/temporal.toml' }, {}, "configFile: file '/nonexistent/temporal.toml' does not exist"],
    [
      'a client key',
      { address: 'a:1', tls: { clientKeyFile: '/nonexistent/key.pem' } },
      {},
      "tls.clientKeyFile: file '/nonexistent/key.pem' does not exist",
    ],
  ])('should refuse %s that does not exist, naming the field and the path', async (_case, settings, env, message) => {
    const pending = resolveTemporalSettings(settings, env);
    await expect(pending).rejects.toThrow(ConfigurationError);
    await expect(pending).rejects.toThrow(message);
  });

  it('should refuse a client certificate without its key', async () => {
    await expect(resolveTemporalSettings({ address: 'a:1', tls: { clientCertFile: caFile } }, {})).rejects.toThrow(
      'tls.clientCertFile is set but tls.clientKeyFile is not: a client certificate needs its key',
    );
  });

  it('should refuse an unknown profile, an unknown key and a key given twice', async () => {
    await expect(resolveTemporalSettings({ configFile, profile: 'prod' }, {})).rejects.toThrow(
      `temporal config file '${configFile}' profile 'prod': Profile 'prod' not found in config data`,
    );
    await expect(resolveTemporalSettings({ address: 'a:1', tlsCaFile: 'x' } as never, {})).rejects.toThrow(
      /^temporal settings: \(root\): Unrecognized key: "tlsCaFile"/,
    );
    await expect(resolveTemporalSettings({ address: 'a:1', apiKey: 'k', apiKeyRef: 'env:K' }, {})).rejects.toThrow(
      'temporal settings: apiKeyRef: give apiKey or apiKeyRef, not both',
    );
  });
});
