/** `tidesync outbox`: how far behind the outbox is: pending rows, the oldest one's age, the dispatch rate. */
import { outboxStats } from '../store/outbox';
import { openCommandContext } from './connect';

/** Prints the outbox's state (as JSON with `--json`). */
export async function outboxCommand(options: { json: boolean }): Promise<number> {
  const tidesync = await openCommandContext();
  try {
    const stats = await outboxStats(tidesync.store);
    if (options.json) {
      console.log(JSON.stringify(stats));
      return 0;
    }
    console.log(
      `pending ${stats.pending}, oldest ${stats.oldestPendingSeconds.toFixed(1)} s; ` +
        `dispatched ${stats.dispatchedLastMinute} in the last minute (${(stats.dispatchedLast5Minutes / 300).toFixed(1)}/s over 5 minutes)`,
    );
    for (const c of stats.byConnector) {
      console.log(`  ${c.integration}/${c.connector}\tpending ${c.pending}\toldest ${c.oldestPendingSeconds.toFixed(1)} s`);
    }
    return 0;
  } finally {
    await tidesync.close();
  }
}
