/** `tidesync relay`: moves outbox rows to Temporal until stopped (several may run side by side). */
import { openCommandContext } from './connect';

/** Runs the relay until SIGINT/SIGTERM. */
export async function relayCommand(): Promise<number> {
  const tidesync = await openCommandContext({ relay: true });
  try {
    console.error(`outbox relay running against ${tidesync.servers.temporal.address}; Ctrl-C to stop`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    return 0;
  } finally {
    await tidesync.close();
  }
}
