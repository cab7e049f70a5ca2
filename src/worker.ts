/**
 * Builds the Temporal worker: the workflow bundle plus activities bound to the database and the
 * registries. `tidesync worker` runs it against configured servers; `tidesync dev` runs it
 * in-process against the embedded stack.
 */
import v8 from 'node:v8';
import type { DataConverter } from '@temporalio/common';
import {
  DefaultLogger,
  type LogLevel,
  type NativeConnection,
  Runtime as TemporalRuntime,
  Worker,
  type WorkerOptions,
} from '@temporalio/worker';
import { createActivities } from './activities';
import { type TidesyncMetrics, createMetrics } from './metrics/metrics';
import { checkWorkflowBundle } from './codec/data-converter';
import type { SecretResolver } from './secrets';
import { DEFAULT_TASK_QUEUE } from './config/servers';
import type { Runtime } from './runtime';

/** Options of `createWorker`. */
export interface CreateWorkerOptions {
  readonly runtime: Runtime;
  readonly connection: NativeConnection;
  readonly namespace?: string;
  readonly taskQueue?: string;
  readonly resolveSecret?: SecretResolver;
  /**
   * A pre-built workflow bundle (see `bundleWorkflowCode`); tests build one for the whole run.
   * Defaults to `TIDESYNC_WORKFLOW_BUNDLE` when set, else bundling `./workflows` now.
   */
  readonly workflowBundlePath?: string;
  /** Caps on concurrent work, for small machines. */
  readonly maxConcurrentActivityTaskExecutions?: number;
  /**
   * Payload codecs and converters (the config's `codec`); the client must use the same one. A
   * pre-built bundle must have been built with its `failureConverterPath`.
   */
  readonly dataConverter?: DataConverter;
}

/** Creates (but does not run) a worker for tidesync's task queue. */
export async function createWorker(options: CreateWorkerOptions): Promise<Worker> {
  const bundlePath = options.workflowBundlePath ?? process.env['TIDESYNC_WORKFLOW_BUNDLE'];
  if (bundlePath) await checkWorkflowBundle(bundlePath, options.dataConverter);
  const workflows: Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> = bundlePath
    ? { workflowBundle: { codePath: bundlePath } }
    : { workflowsPath: require.resolve('./workflows') };
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace ?? 'default',
    taskQueue: options.taskQueue ?? DEFAULT_TASK_QUEUE,
    ...workflows,
    activities: createActivities({
      runtime: options.runtime,
      metrics: runtimeMetrics(),
      ...(options.resolveSecret ? { resolveSecret: options.resolveSecret } : {}),
    }),
    maxConcurrentActivityTaskExecutions: options.maxConcurrentActivityTaskExecutions ?? 50,
    ...(options.dataConverter ? { dataConverter: options.dataConverter } : {}),
  });
}

/** Options of `installRuntime`. */
export interface RuntimeInstallOptions {
  /** Serve the SDK's Prometheus metrics (tidesync's among them) on this `host:port`. */
  readonly prometheusBindAddress?: string;
}

/**
 * Installs the Temporal SDK runtime with a log level (`TIDESYNC_LOG_LEVEL`, default WARN) so the
 * worker's routine INFO lines (bundler output, state changes) stay out of the demo's output, and
 * optionally the runtime's Prometheus exporter. Must run before the first connection or worker.
 */
export function installRuntime(
  level: LogLevel = (process.env['TIDESYNC_LOG_LEVEL'] as LogLevel | undefined) ?? 'WARN',
  options: RuntimeInstallOptions = {},
): void {
  TemporalRuntime.install({
    logger: new DefaultLogger(level),
    ...(options.prometheusBindAddress
      ? { telemetryOptions: { metrics: { prometheus: { bindAddress: options.prometheusBindAddress } } } }
      : {}),
  });
}

/** tidesync's metrics on the installed runtime's meter. */
export function runtimeMetrics(): TidesyncMetrics {
  return createMetrics(TemporalRuntime.instance().metricMeter);
}

/**
 * How much V8 lets the old generation grow past what a full collection left alive, in percent, in
 * processes tidesync runs itself (`tidesync worker`, `tidesync dev`). V8's own factor goes up to 4x
 * when collections are cheap, as they are for a worker: a bulk export's pages live across a few
 * scavenges and die in the old generation, so the heap climbed towards 4x its live size over a
 * long export (a worker's peak RSS was 255 MiB after 10,000 contacts and 390-400 after 100,000,
 * with about 45 MiB live throughout). At 50% it stayed at 245 and 277 MiB, at the same CPU per
 * entity. `TIDESYNC_HEAP_GROWING_PERCENT` sets another value; 0 leaves V8's own.
 */
export const WORKER_HEAP_GROWING_PERCENT = 50;

/**
 * Applies `WORKER_HEAP_GROWING_PERCENT` (or `TIDESYNC_HEAP_GROWING_PERCENT`) to this process,
 * unless node was started with its own `--heap-growing-percent`. V8 reads the flag whenever it
 * sets the next collection's limit, so setting it after start takes effect from the next one.
 */
export function tuneWorkerHeap(env: NodeJS.ProcessEnv = process.env): number | null {
  if (process.execArgv.some((arg) => arg.replace(/_/g, '-').startsWith('--heap-growing-percent'))) return null;
  const given = env['TIDESYNC_HEAP_GROWING_PERCENT'];
  const percent = given === undefined || given === '' ? WORKER_HEAP_GROWING_PERCENT : Number(given);
  if (!Number.isInteger(percent) || percent < 0 || percent > 1000) {
    throw new Error(`TIDESYNC_HEAP_GROWING_PERCENT '${given}' is not a whole number from 0 to 1000`);
  }
  if (percent === 0) return null;
  v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
  return percent;
}
