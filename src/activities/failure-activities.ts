/**
 * The activities of the failure lifecycle: `mayWrite`, the cheap "may I write?" a workflow asks the
 * integration's breaker (as a local activity) before it writes again, and `markFailed`, which keeps
 * changes whose transient failures outlasted the retry window as `failed` records.
 */
import type { Kysely } from 'kysely';
import { claimWrite } from '../store/integration-health';
import { saveFailed } from '../store/failures';
import type { TidesyncDatabase } from '../store/schema';
import type { MarkFailedInput, MayWriteInput, MayWriteOutput, RecordFailure } from './types';

/** The failure code of a record whose retry window ran out. */
export const RETRY_WINDOW_EXHAUSTED = 'retry_window_exhausted';

/** Builds the failure lifecycle's activities on tidesync's tables. */
export function createFailureActivities(db: Kysely<TidesyncDatabase>) {
  return {
    /**
     * Yes when the integration is healthy; when degraded, yes as the probe for exactly one caller
     * per probe interval, and no (with the wait until the next probe) for every other.
     */
    async mayWrite(input: MayWriteInput): Promise<MayWriteOutput> {
      return claimWrite(db, input.integrationId);
    },

    /**
     * Marks each change `failed` with the reason, the attempts and the time, unless its sync state
     * shows it written after all; returns the records marked, for the execution record.
     */
    async markFailed(input: MarkFailedInput): Promise<RecordFailure[]> {
      const scope = { integrationId: input.integrationId, connector: input.connector };
      const failures: RecordFailure[] = [];
      for (const change of input.changes) {
        const marked = await saveFailed(db, scope, { key: change.key, error: input.error, attempts: input.attempts, hash: change.hash });
        if (marked) failures.push({ key: change.key, step: input.step, code: RETRY_WINDOW_EXHAUSTED, message: input.error });
      }
      return failures;
    },
  };
}
