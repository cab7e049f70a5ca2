/**
 * The worker's HTTP endpoint for operators: `/metrics` (Prometheus text: the Temporal SDK's
 * metrics from the runtime's own exporter, with tidesync's among them, and the outbox's lag read
 * from PostgreSQL at each scrape) and `/healthz` (fails when PostgreSQL or Temporal is unreachable).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sql } from 'kysely';
import type { Tidesync } from '../start';
import { countFailedRecords } from '../store/failures';
import { listIntegrationHealth } from '../store/integration-health';
import { outboxStats } from '../store/outbox';
import type { TidesyncMetrics } from './metrics';

/** How long a health check waits for each server before calling it down. */
const HEALTH_TIMEOUT_MS = 2_000;

/** Options of `startMetricsServer`. */
export interface MetricsServerOptions {
  readonly tidesync: Pick<Tidesync, 'store' | 'temporal'>;
  readonly metrics: TidesyncMetrics;
  /** The SDK's Prometheus endpoint (`telemetryOptions.metrics.prometheus.bindAddress`), e.g. `http://127.0.0.1:9465/metrics`. */
  readonly sdkMetricsUrl: string;
  readonly port: number;
  /** Default `0.0.0.0`: scrapers usually run elsewhere. */
  readonly host?: string;
}

/** A running metrics endpoint. */
export interface MetricsServer {
  readonly url: string;
  close(): Promise<void>;
}

/** Starts the endpoint; resolves once it listens. */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const seen = new Set<string>();
  const server = createServer((req, res) => {
    handle(options, seen, req, res).catch((err: unknown) => send(res, 500, `metrics failed: ${(err as Error).message}\n`));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host && options.host !== '0.0.0.0' ? options.host : '127.0.0.1'}:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function handle(options: MetricsServerOptions, seen: Set<string>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  if (req.method !== 'GET') return send(res, 405, 'use GET\n');
  if (path === '/metrics') {
    await refreshGauges(options, seen);
    const sdk = await fetch(options.sdkMetricsUrl, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) });
    return send(res, 200, await sdk.text(), 'text/plain; version=0.0.4');
  }
  if (path === '/healthz') {
    const [postgres, temporal] = await Promise.all([
      check(() => sql`select 1`.execute(options.tidesync.store)),
      check(() => options.tidesync.temporal.workflowService.getSystemInfo({})),
    ]);
    const ok = postgres === 'ok' && temporal === 'ok';
    return send(res, ok ? 200 : 503, `${JSON.stringify({ status: ok ? 'ok' : 'unavailable', postgres, temporal })}\n`, 'application/json');
  }
  send(res, 404, 'not found: GET /metrics or /healthz\n');
}

/**
 * Gauges that come from the database, read just before each scrape. A series that was reported
 * once is reported again (as 0) when its rows are gone, so a cleared failure does not linger.
 */
async function refreshGauges({ tidesync, metrics }: MetricsServerOptions, seen: Set<string>): Promise<void> {
  const [stats, failed, health] = await Promise.all([
    outboxStats(tidesync.store),
    countFailedRecords(tidesync.store),
    listIntegrationHealth(tidesync.store),
  ]);
  metrics.outboxOldestSeconds.set(stats.oldestPendingSeconds);
  metrics.outboxPending.set(stats.pending);
  const current = new Map(failed.map((f) => [JSON.stringify([f.integration, f.connector]), f.failed]));
  for (const key of new Set([...seen, ...current.keys()])) {
    const [integration, connector] = JSON.parse(key) as [string, string];
    metrics.failedRecords.set(current.get(key) ?? 0, { integration, connector });
    seen.add(key);
  }
  for (const h of health) metrics.breakerDegraded.set(h.state === 'degraded' ? 1 : 0, { integration: h.integration });
}

async function check(probe: () => Promise<unknown>): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      probe(),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer in ${HEALTH_TIMEOUT_MS} ms`)), HEALTH_TIMEOUT_MS))),
    ]);
    return 'ok';
  } catch (err) {
    return (err as Error).message;
  } finally {
    clearTimeout(timer);
  }
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain'): void {
  res.writeHead(status, { 'content-type': type });
  res.end(body);
}
