/**
 * The payload codec on its own: AES-256-GCM over whole payloads, keys from secret references,
 * rotation (the first key encrypts, every key decrypts) and the errors that name the key id.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import { AesGcmCodec, ENCRYPTED_ENCODING, KEY_ID_METADATA } from '../src/codec/aes-gcm-codec';
import { createCodec } from '../src/codec/data-converter';
import { validateConfig } from '../src/config/define-config';

const text = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? new Uint8Array()).toString();
const key = (id: string) => ({ id, bytes: randomBytes(32) });
const contact = { firstName: 'Ada', email: 'ada.lovelace.0@example.com', phone: '+1-555-1001' };

describe('the AES-256-GCM payload codec', () => {
  it('should encrypt the whole payload under the first key and restore it exactly', async () => {
    const codec = new AesGcmCodec([key('k2'), key('k1')]);
    const payload = defaultPayloadConverter.toPayload(contact);
    const [encrypted] = await codec.encode([payload]);
    expect(text(encrypted?.metadata?.['encoding'])).toBe(ENCRYPTED_ENCODING);
    expect(text(encrypted?.metadata?.[KEY_ID_METADATA])).toBe('k2');
    // Neither the value nor its original encoding (json/plain) shows.
    expect(Object.keys(encrypted?.metadata ?? {}).sort()).toEqual(['encoding', KEY_ID_METADATA]);
    expect(text(encrypted?.data)).not.toContain('Ada');
    expect(text(encrypted?.data)).not.toContain('json/plain');
    const [decoded] = await codec.decode([encrypted!]);
    expect(defaultPayloadConverter.fromPayload(decoded!)).toEqual(contact);
    expect(text(decoded?.metadata?.['encoding'])).toBe('json/plain');
  });

  it('should use a fresh nonce for every payload', async () => {
    const codec = new AesGcmCodec([key('k1')]);
    const payload = defaultPayloadConverter.toPayload(contact);
    const [a, b] = await codec.encode([payload, payload]);
    expect(Buffer.from(a!.data!).equals(Buffer.from(b!.data!))).toBe(false);
  });

  it('should still decrypt payloads of an older key after a new key takes over encrypting', async () => {
    const k1 = key('k1');
    const old = new AesGcmCodec([k1]);
    const [underK1] = await old.encode([defaultPayloadConverter.toPayload(contact)]);
    const rotated = new AesGcmCodec([key('k2'), k1]);
    expect(rotated.encryptingKeyId).toBe('k2');
    const [decoded] = await rotated.decode([underK1!]);
    expect(defaultPayloadConverter.fromPayload(decoded!)).toEqual(contact);
  });

  it('should name an unknown key id and the known ones', async () => {
    const [underK3] = await new AesGcmCodec([key('k3')]).encode([defaultPayloadConverter.toPayload(contact)]);
    await expect(new AesGcmCodec([key('k2'), key('k1')]).decode([underK3!])).rejects.toThrow(
      "payload was encrypted with codec key 'k3', which is not configured (known: k2, k1)",
    );
  });

  it('should refuse a payload encrypted with other bytes under the same key id, or altered', async () => {
    const [encrypted] = await new AesGcmCodec([key('k1')]).encode([defaultPayloadConverter.toPayload(contact)]);
    await expect(new AesGcmCodec([key('k1')]).decode([encrypted!])).rejects.toThrow(/cannot decrypt payload with codec key 'k1'/);
    const codec = new AesGcmCodec([key('k1')]);
    const [mine] = await codec.encode([defaultPayloadConverter.toPayload(contact)]);
    const altered = Buffer.from(mine!.data!);
    altered[20] = (altered[20] ?? 0) ^ 1;
    await expect(codec.decode([{ ...mine!, data: altered }])).rejects.toMatchObject({ code: 'codec_bad_payload' });
  });

  it('should pass payloads that are not encrypted through unchanged', async () => {
    const payload = defaultPayloadConverter.toPayload(contact);
    expect(await new AesGcmCodec([key('k1')]).decode([payload])).toEqual([payload]);
  });
});

describe('codec keys from the config', () => {
  let dir: string;
  beforeAll(async () => (dir = await mkdtemp(path.join(tmpdir(), 'tidesync-codec-'))));
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('should read keys as base64 or hex from env: and file: references, the first one encrypting', async () => {
    const k1 = randomBytes(32);
    const k2 = randomBytes(32);
    const file = path.join(dir, 'k1');
    await writeFile(file, `${k1.toString('hex')}\n`);
    process.env['TIDESYNC_TEST_CODEC_K2'] = k2.toString('base64');
    try {
      const codec = await createCodec({
        keys: [
          { id: 'k2', ref: 'env:TIDESYNC_TEST_CODEC_K2' },
          { id: 'k1', ref: `file:${file}` },
        ],
      });
      expect(codec.keyIds).toEqual(['k2', 'k1']);
      const [encrypted] = await codec.encode([defaultPayloadConverter.toPayload(contact)]);
      // The file key decrypts what it is given: both keys were read as the same 32 bytes.
      const [decoded] = await new AesGcmCodec([{ id: 'k2', bytes: k2 }]).decode([encrypted!]);
      expect(defaultPayloadConverter.fromPayload(decoded!)).toEqual(contact);
    } finally {
      delete process.env['TIDESYNC_TEST_CODEC_K2'];
    }
  });

  it.each([
    ['a 16-byte key', randomBytes(16).toString('base64'), "codec key 'short' is 16 bytes; AES-256 needs 32 bytes"],
    ['a 31-byte hex key', randomBytes(31).toString('hex'), "codec key 'short' is 31 bytes"],
    ['a passphrase', 'correct horse battery staple', "codec key 'short' is neither hex nor base64"],
  ])('should refuse %s, naming the key id', async (_what, value, message) => {
    await expect(createCodec({ keys: [{ id: 'short', ref: 'env:X' }] }, () => Promise.resolve(value))).rejects.toThrow(message);
  });

  it('should name the key whose reference cannot be resolved, and use the config resolver', async () => {
    await expect(createCodec({ keys: [{ id: 'k9', ref: 'env:TIDESYNC_TEST_NOT_SET' }] })).rejects.toThrow(
      "codec key 'k9': secret reference 'env:TIDESYNC_TEST_NOT_SET' names environment variable 'TIDESYNC_TEST_NOT_SET', which is not set",
    );
    const seen: string[] = [];
    const vault = (ref: string) => (seen.push(ref), Promise.resolve(randomBytes(32).toString('base64')));
    await createCodec({ keys: [{ id: 'k1', ref: 'vault:tidesync/k1' }] }, vault);
    expect(seen).toEqual(['vault:tidesync/k1']);
  });

  it('should check the codec settings with the config, by field path', () => {
    expect(() => validateConfig({ codec: { keys: [] } })).toThrow('codec.keys: expected at least one key (the first one encrypts)');
    expect(() =>
      validateConfig({
        codec: {
          keys: [
            { id: 'k1', ref: 'env:A' },
            { id: 'k1', ref: 'env:B' },
          ],
        },
      }),
    ).toThrow("codec.keys.1.id: key id 'k1' is used twice");
    expect(() => validateConfig({ codec: { keys: [{ id: 'k 1', ref: 'env:A' }] } })).toThrow('codec.keys.0.id: expected a key id');
    expect(() => validateConfig({ codec: { keys: [{ id: 'k1', key: 'abc' }] } })).toThrow(/codec\.keys\.0/);
    expect(validateConfig({ codec: { keys: [{ id: 'k1', ref: 'env:A' }] } }).codec?.keys[0]?.id).toBe('k1');
  });
});
