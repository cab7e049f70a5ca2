/** `tidesync worker`: runs the worker (and an outbox relay) for the application's config until stopped. */
import { getFreePort } from '../stack/ports';
import { startTidesync } from '../start';
import { installRuntime, runtimeMetrics, tuneWorkerHeap } from '../worker';
import { loadCheckedConfig } from './connect';

/** Options of `tidesync worker`. */
export interface WorkerCommandOptions {
  readonly relay: boolean;
  /** Serve /metrics and /healthz on this port (`--metrics-port`, `TIDESYNC_METRICS_PORT`, or the config's `metrics.port`). */
  readonly metricsPort?: number;
}

/** Runs until SIGINT/SIGTERM (the SDK shuts the worker down on them), then closes everything. */
export async function workerCommand(options: WorkerCommandOptions = { relay: true }): Promise<number> {
  tuneWorkerHeap();
  const { config } = await loadCheckedConfig({ required: true });
  const metricsPort = options.metricsPort ?? envPort() ?? config.metrics?.port;
  // The SDK's exporter listens on loopback only; the endpoint operators scrape is ours (it adds /healthz).
  const sdkMetricsAddress = metricsPort === undefined ? undefined : `127.0.0.1:${await getFreePort()}`;
  installRuntime(undefined, sdkMetricsAddress ? { prometheusBindAddress: sdkMetricsAddress } : {});
  const tidesync = await startTidesync(config, { worker: true, relay: options.relay });
  try {
    let metricsUrl = '';
    if (metricsPort !== undefined && sdkMetricsAddress) {
      const { startMetricsServer } = await import('../metrics/server');
      const server = await startMetricsServer({
        tidesync,
        metrics: runtimeMetrics(),
        sdkMetricsUrl: `http://${sdkMetricsAddress}/metrics`,
        port: metricsPort,
        ...(config.metrics?.host ? { host: config.metrics.host } : {}),
      });
      tidesync.onClose(() => server.close());
      metricsUrl = `; metrics on ${server.url}/metrics, health on ${server.url}/healthz`;
    }
    const jobs = [...tidesync.runtime.jobs.keys()].join(', ') || 'none';
    const { temporal } = tidesync.servers;
    console.error(
      `worker polling task queue '${tidesync.taskQueue}' on ${temporal.address}${temporal.secure ? ' (tls)' : ''}, ` +
        `namespace '${temporal.namespace}' (jobs: ${jobs})${options.relay ? '; outbox relay running' : ''}${metricsUrl}`,
    );
    await tidesync.workerDone;
    return 0;
  } finally {
    await tidesync.close();
  }
}

function envPort(): number | undefined {
  const value = process.env['TIDESYNC_METRICS_PORT'];
  if (!value) return undefined;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`TIDESYNC_METRICS_PORT '${value}' is not a port`);
  return port;
}
