/**
 * `tidesync codec-server`: serves the config's payload codec over Temporal's codec endpoints
 * (`/encode`, `/decode`), so the Web UI and the `temporal` CLI can show encrypted histories.
 * Needs only the config and its keys: no database, no Temporal connection.
 */
import type { AesGcmCodec } from '../codec/aes-gcm-codec';
import { type CodecServer, type CodecServerOptions, startCodecServer } from '../codec/codec-server';
import { createCodec } from '../codec/data-converter';
import type { TidesyncConfig } from '../config/define-config';
import { ConfigurationError } from '../errors';
import { DEFAULT_UI_PORT } from '../stack/temporal-server';
import { loadCheckedConfig } from './connect';

const NO_CODEC_HINT = "codec: { keys: [{ id: 'k1', ref: 'env:TIDESYNC_CODEC_KEY' }] }";

/** The Web UI of a dev server on `port`, under both names a browser may use for it. */
export function uiOrigins(port = DEFAULT_UI_PORT): string[] {
  return [`http://127.0.0.1:${port}`, `http://localhost:${port}`];
}

/** The dev stack's Web UI origins, the default of `--origin`. */
export const DEFAULT_UI_ORIGINS: readonly string[] = uiOrigins();

/** Starts a codec server for the config's codec (`tidesync dev` runs one too); errors name a bad key. */
export async function startConfigCodecServer(
  config: TidesyncConfig,
  options: Omit<CodecServerOptions, 'codec'>,
): Promise<{ readonly server: CodecServer; readonly codec: AesGcmCodec }> {
  if (!config.codec) throw new ConfigurationError(`the config has no codec: add ${NO_CODEC_HINT}`);
  const codec = await createCodec(config.codec, config.resolveSecret);
  return { server: await startCodecServer({ ...options, codec }), codec };
}

/** Options of the codec-server command. */
export interface CodecServerCommandOptions {
  readonly port: number;
  readonly host: string;
  /** Web UI origins allowed to call from a browser. */
  readonly origin: readonly string[];
  readonly token?: string;
}

/** Serves the codec until SIGINT/SIGTERM. */
export async function codecServerCommand(options: CodecServerCommandOptions): Promise<number> {
  const { file, config } = await loadCheckedConfig({ required: true });
  if (!config.codec) throw new ConfigurationError(`${file ?? 'the config'} has no codec: add ${NO_CODEC_HINT}`);
  const { server, codec } = await startConfigCodecServer(config, {
    port: options.port,
    host: options.host,
    origins: options.origin,
    ...(options.token ? { token: options.token } : {}),
    log: (line) => console.error(line),
  });
  try {
    console.error(
      `codec server listening on ${server.url} (encrypts with key '${codec.encryptingKeyId}', decrypts ${codec.keyIds.join(', ')}; ` +
        `ui origins: ${options.origin.join(', ') || 'none'}; ${options.token ? 'bearer token required' : 'no token'}); Ctrl-C to stop`,
    );
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    return 0;
  } finally {
    await server.close();
  }
}
