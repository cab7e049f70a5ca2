/**
 * The data converter tidesync's client and worker share when a codec is configured: the
 * AES-256-GCM codec over every payload, and failure messages moved into payloads so they are
 * encrypted too. Built once, in `startTidesync`.
 */
import { readFile } from 'node:fs/promises';
import type { DataConverter } from '@temporalio/common';
import { ConfigurationError } from '../errors';
import type { SecretResolver } from '../secrets';
import { AesGcmCodec } from './aes-gcm-codec';
import { FAILURE_CONVERTER_MARKER } from './failure-converter';
import { loadCodecKeys } from './keys';
import type { CodecSettings } from './settings';

/**
 * The failure converter module for `failureConverterPath`. A pre-built workflow bundle must be
 * built with it too (`bundleWorkflowCode({ workflowsPath, failureConverterPath })`), or failures
 * raised by workflow code would stay in clear text.
 */
export const CODEC_FAILURE_CONVERTER_PATH: string = require.resolve('./failure-converter');

/** Resolves the keys of `settings` and builds the codec; errors name the bad key's id. */
export async function createCodec(settings: CodecSettings, resolveSecret?: SecretResolver): Promise<AesGcmCodec> {
  return new AesGcmCodec(await loadCodecKeys(settings, resolveSecret));
}

/** The data converter for the client and the worker: `codec` over every payload, failures encoded. */
export function codecDataConverter(codec: AesGcmCodec): DataConverter {
  return { payloadCodecs: [codec], failureConverterPath: CODEC_FAILURE_CONVERTER_PATH };
}

/**
 * Refuses a pre-built workflow bundle that lacks the codec's failure converter when `dataConverter`
 * needs it: workflow failures would be stored unencrypted, silently.
 */
export async function checkWorkflowBundle(bundlePath: string, dataConverter: DataConverter | undefined): Promise<void> {
  if (dataConverter?.failureConverterPath !== CODEC_FAILURE_CONVERTER_PATH) return;
  if ((await readFile(bundlePath, 'utf8')).includes(FAILURE_CONVERTER_MARKER)) return;
  throw new ConfigurationError(
    `workflow bundle ${bundlePath} was built without the codec's failure converter, so workflow failures would be stored unencrypted; ` +
      `build it with bundleWorkflowCode({ workflowsPath, failureConverterPath: CODEC_FAILURE_CONVERTER_PATH }) or leave the bundle out`,
  );
}
