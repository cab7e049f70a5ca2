/**
 * A Temporal payload codec that encrypts every payload with AES-256-GCM. The whole payload (its
 * metadata and data) is encrypted, so even the encoding of the value is hidden; the result carries
 * `encoding: binary/encrypted` and the id of the key in `encryption-key-id`, so a key can be
 * rotated while payloads written under the old one still decrypt. The byte layout (12-byte nonce,
 * ciphertext, 16-byte tag; the payload as protobuf) is the one Temporal's Go and Python encryption
 * samples use.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { METADATA_ENCODING_KEY, type Payload, type PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { CodecError, ConfigurationError } from '../errors';
import { type CodecKey, KEY_BYTES } from './keys';

/** The `encoding` of an encrypted payload. */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
/** The metadata entry naming the key a payload was encrypted with. */
export const KEY_ID_METADATA = 'encryption-key-id';

const CIPHER = 'aes-256-gcm';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const ProtoPayload = temporal.api.common.v1.Payload;

/** AES-256-GCM over whole payloads; the first key encrypts, every key decrypts. */
export class AesGcmCodec implements PayloadCodec {
  readonly #keys: ReadonlyMap<string, Buffer>;
  readonly #encryptingKeyId: string;

  /** `keys` in order of preference: the first one encrypts. */
  constructor(keys: readonly CodecKey[]) {
    const first = keys[0];
    if (!first) throw new ConfigurationError('the codec needs at least one key');
    for (const key of keys) {
      if (key.bytes.length !== KEY_BYTES)
        throw new ConfigurationError(`codec key '${key.id}' is ${key.bytes.length} bytes; expected ${KEY_BYTES}`);
    }
    this.#keys = new Map(keys.map((key) => [key.id, key.bytes]));
    this.#encryptingKeyId = first.id;
  }

  /** The id of the key new payloads are encrypted with. */
  get encryptingKeyId(): string {
    return this.#encryptingKeyId;
  }

  /** Every key id this codec can decrypt, the encrypting one first. */
  get keyIds(): readonly string[] {
    return [...this.#keys.keys()];
  }

  /** Encrypts each payload under the encrypting key. */
  encode(payloads: Payload[]): Promise<Payload[]> {
    const key = this.#keys.get(this.#encryptingKeyId) as Buffer;
    return Promise.resolve(
      payloads.map((payload) => {
        const nonce = randomBytes(NONCE_BYTES);
        const cipher = createCipheriv(CIPHER, key, nonce, { authTagLength: TAG_BYTES });
        const plain = ProtoPayload.encode(payload).finish();
        const data = Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
        return {
          metadata: { [METADATA_ENCODING_KEY]: Buffer.from(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: Buffer.from(this.#encryptingKeyId) },
          data,
        };
      }),
    );
  }

  /** Decrypts encrypted payloads with the key they name; other payloads pass through unchanged. */
  decode(payloads: Payload[]): Promise<Payload[]> {
    try {
      return Promise.resolve(payloads.map((payload) => this.#decodeOne(payload)));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  #decodeOne(payload: Payload): Payload {
    const metadata = payload.metadata ?? {};
    const encoding = metadata[METADATA_ENCODING_KEY];
    if (!encoding || Buffer.from(encoding).toString() !== ENCRYPTED_ENCODING) return payload;
    const keyIdBytes = metadata[KEY_ID_METADATA];
    if (!keyIdBytes) throw new CodecError('codec_bad_payload', `encrypted payload has no '${KEY_ID_METADATA}' metadata`);
    const keyId = Buffer.from(keyIdBytes).toString();
    const key = this.#keys.get(keyId);
    if (!key) {
      throw new CodecError(
        'codec_unknown_key',
        `payload was encrypted with codec key '${keyId}', which is not configured (known: ${this.keyIds.join(', ')})`,
      );
    }
    const data = Buffer.from(payload.data ?? new Uint8Array());
    if (data.length < NONCE_BYTES + TAG_BYTES) {
      throw new CodecError('codec_bad_payload', `encrypted payload under key '${keyId}' is ${data.length} bytes, too short`);
    }
    try {
      const decipher = createDecipheriv(CIPHER, key, data.subarray(0, NONCE_BYTES), { authTagLength: TAG_BYTES });
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      const plain = Buffer.concat([decipher.update(data.subarray(NONCE_BYTES, data.length - TAG_BYTES)), decipher.final()]);
      return ProtoPayload.decode(plain);
    } catch (err) {
      throw new CodecError(
        'codec_bad_payload',
        `cannot decrypt payload with codec key '${keyId}': the key's bytes differ from the ones it was encrypted with, or the payload was altered`,
        { cause: err },
      );
    }
  }
}
