/**
 * The failure converter used when the codec is on: error messages and stack traces move into an
 * encoded payload, so the codec encrypts them too (an error may quote entity data). Loaded by
 * path (`failureConverterPath`), both by the worker and inside the workflow bundle: it must stay
 * free of Node built-ins.
 */
import { DefaultFailureConverter } from '@temporalio/common';

/** A string only a workflow bundle built with this module contains (see `checkWorkflowBundle`). */
export const FAILURE_CONVERTER_MARKER = 'tidesync-encoded-failure-converter';

/** The SDK's default converter with `encodeCommonAttributes`, named so a bundle holding it can be recognised. */
class EncodedFailureConverter extends DefaultFailureConverter {
  readonly marker = FAILURE_CONVERTER_MARKER;
}

/** Read by the Temporal SDK under this name. */
export const failureConverter = new EncodedFailureConverter({ encodeCommonAttributes: true });
