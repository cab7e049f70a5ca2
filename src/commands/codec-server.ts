/**
 * `tidesync codec-server`: serves the config's payload codec over Temporal's codec endpoints
 * (`/encode`, `/decode`), so the Web UI and the `temporal` CLI can show encrypted histories.
 * Needs only the config and its keys: no database, no Temporal connection.
 */
import { createCodec } from '../codec/data-converter';
import { startCodecServer } from '../codec/codec-server';
import { ConfigurationError } from '../errors';
import { loadCheckedConfig } from './connect';

/** The dev stack's Web UI, under both names a browser may use for it. */
export const DEFAULT_UI_ORIGINS: readonly string[] = ['http://127.0.0.1:8233', 'http://localhost:8233'];

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
  if (!config.codec) {
    throw new ConfigurationError(
      `${file ?? 'the config'} has no codec: add codec: { keys: [{ id: 'k1', ref: 'env:TIDESYNC_CODEC_KEY' }] }`,
    );
  }
  const codec = await createCodec(config.codec, config.resolveSecret);
  const server = await startCodecServer({
    codec,
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
