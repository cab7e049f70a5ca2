/** `tidesync worker`: runs the worker (and an outbox relay) for the application's config until stopped. */
import { openCommandContext } from './connect';

/** Runs until SIGINT/SIGTERM (the SDK shuts the worker down on them), then closes everything. */
export async function workerCommand(options: { relay: boolean } = { relay: true }): Promise<number> {
  const tidesync = await openCommandContext({ worker: true, relay: options.relay, requireConfig: true, poolSize: 10 });
  try {
    const jobs = [...tidesync.runtime.jobs.keys()].join(', ') || 'none';
    console.error(
      `worker polling task queue '${tidesync.taskQueue}' on ${tidesync.servers.temporal.address}` +
        `${tidesync.servers.temporal.secure ? ' (tls)' : ''}, namespace '${tidesync.servers.temporal.namespace}' (jobs: ${jobs})` +
        `${options.relay ? '; outbox relay running' : ''}`,
    );
    await tidesync.workerDone;
    return 0;
  } finally {
    await tidesync.close();
  }
}
