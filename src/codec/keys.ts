/**
 * The codec's keys: each secret reference resolved once, at start, and its text turned into the
 * 32 bytes AES-256 needs. Errors name the key id, never the key.
 */
import { ConfigurationError } from '../errors';
import { type SecretResolver, resolveSecret as defaultResolveSecret } from '../secrets';
import type { CodecSettings } from './settings';

/** AES-256 takes a 32-byte key. */
export const KEY_BYTES = 32;

/** A resolved key: its id and its bytes. */
export interface CodecKey {
  readonly id: string;
  readonly bytes: Buffer;
}

const HEX = /^[0-9a-fA-F]+$/;
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

/**
 * Reads a key written as 64 hex digits or as base64 (standard or URL-safe); `id` names it in errors.
 * `openssl rand -base64 32` and `openssl rand -hex 32` both write one.
 */
export function parseKey(id: string, text: string): Buffer {
  const value = text.trim();
  let bytes: Buffer;
  // A 32-byte key in base64 is 44 characters ending in '=': never all hex digits of even length.
  if (value.length % 2 === 0 && HEX.test(value)) bytes = Buffer.from(value, 'hex');
  else if (BASE64.test(value)) bytes = Buffer.from(value.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  else throw new ConfigurationError(`codec key '${id}' is neither hex nor base64; expected ${KEY_BYTES} bytes (openssl rand -base64 32)`);
  if (bytes.length !== KEY_BYTES) {
    throw new ConfigurationError(
      `codec key '${id}' is ${bytes.length} bytes; AES-256 needs ${KEY_BYTES} bytes, as ${KEY_BYTES * 2} hex digits or base64 (openssl rand -base64 32)`,
    );
  }
  return bytes;
}

/** Resolves and parses every key of `settings`, in order (the first one encrypts). */
export async function loadCodecKeys(settings: CodecSettings, resolveSecret: SecretResolver = defaultResolveSecret): Promise<CodecKey[]> {
  return Promise.all(
    settings.keys.map(async ({ id, ref }) => {
      let text: string;
      try {
        text = await resolveSecret(ref);
      } catch (err) {
        throw new ConfigurationError(`codec key '${id}': ${(err as Error).message}`, { cause: err });
      }
      return { id, bytes: parseKey(id, text) };
    }),
  );
}
