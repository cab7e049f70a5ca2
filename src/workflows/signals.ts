/** Signals of the export workflow; the client imports these definitions to send them. */
import { defineSignal } from '@temporalio/workflow';

/**
 * The entity changed again. Sent with signal-with-start: a running export folds it in and exports
 * once more with the latest state after the current pass; otherwise a new run starts.
 */
export const changedSignal = defineSignal('changed');
