/**
 * What a tidesync configuration file says about the payload codec, and its schema. Keys are named
 * by secret references (`env:NAME`, `file:PATH`, or whatever the config's `resolveSecret` reads),
 * never written in the config itself.
 */
import { z } from 'zod';

/** One AES-256 key: its id, kept in every payload it encrypts, and where its 32 bytes live. */
export interface CodecKeySettings {
  /** Names the key in payload metadata (`encryption-key-id`); letters, digits, `.`, `_`, `-`. */
  readonly id: string;
  /** Secret reference to the key: 32 bytes as 64 hex digits or as base64. */
  readonly ref: string;
}

/** The `codec` settings: the first key encrypts, every key decrypts (rotation: put the new key first). */
export interface CodecSettings {
  readonly keys: readonly CodecKeySettings[];
}

const keyId = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'expected a key id of 1 to 64 letters, digits, dots, underscores or dashes');

/** Schema of {@link CodecSettings}: at least one key, ids unique, unknown fields refused. */
export const codecSettingsSchema = z
  .strictObject({
    keys: z
      .array(z.strictObject({ id: keyId, ref: z.string().min(1, 'expected a secret reference such as env:NAME or file:PATH') }))
      .min(1, 'expected at least one key (the first one encrypts)'),
  })
  .superRefine((settings, ctx) => {
    const seen = new Set<string>();
    settings.keys.forEach((key, index) => {
      if (seen.has(key.id)) ctx.addIssue({ code: 'custom', path: ['keys', index, 'id'], message: `key id '${key.id}' is used twice` });
      seen.add(key.id);
    });
  });
