/** `tidesync relay`: moves outbox rows to Temporal until stopped (several may run side by side). */
import { OutboxRelay } from '../outbox/relay';
import { openCommandContext } from './connect';

/** Runs the relay until SIGINT/SIGTERM. */
export async function relayCommand(): Promise<number> {
  const ctx = await openCommandContext();
  try {
    const relay = new OutboxRelay({
      db: ctx.db,
      databaseUrl: ctx.servers.databaseUrl,
      client: ctx.client,
      log: (line) => console.error(line),
    });
    relay.start();
    console.error(`outbox relay running against ${ctx.servers.temporalAddress}; Ctrl-C to stop`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await relay.stop();
    return 0;
  } finally {
    await ctx.close();
  }
}
