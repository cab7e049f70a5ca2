/** Signals of the export workflow; the client imports these definitions to send them. */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { EntityId } from '../entity-id';

/**
 * The entity changed again. Sent with signal-with-start: a running export folds it in and exports
 * once more with the latest state after the current pass; otherwise a new run starts.
 */
export const changedSignal = defineSignal('changed');

/**
 * Entities of a connector changed. The outbox relay sends it with signal-with-start to the
 * connector's change stream (`stream/<integration>/<connector>`), one signal per batch of rows.
 */
export const streamChangesSignal = defineSignal<[{ readonly ids: readonly EntityId[] }]>('changes');

/** What a change stream is doing now (`streamStatusQuery`). */
export interface StreamStatus {
  /** Entities waiting for a pass (a lone change for a moment, a burst until it is quiet). */
  readonly pending: number;
  /** Entities in a pass now. */
  readonly inFlight: number;
  /** Passes this run started. */
  readonly passes: number;
  /** Entities this run exported (its `TidesyncEntityIds`). */
  readonly entities: number;
  readonly written: number;
  readonly skipped: number;
  readonly failed: number;
}

/** Asks a change stream what it is doing. */
export const streamStatusQuery = defineQuery<StreamStatus>('status');
