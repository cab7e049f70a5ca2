/**
 * The two workers every phase runs on: `node bin/tidesync.js worker` on the demo config, each in a
 * process of its own (as operators run them), on the bench's task queue. The third phase's pair is
 * started with `task-queue-limit.js` preloaded.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { DEMO_TOKEN_ENV } from '../../examples/demo/demo-setup';
import type { ProcessLedger } from '../chaos/leftovers';
import { freePort } from '../chaos/stack';
import { WorkerProcess } from '../chaos/worker-process';
import { TASK_QUEUE_LIMIT_ENV } from './task-queue-env';

/** What the workers are started with. */
export interface WorkerSetup {
  /** The package root (bin/, dist/, .build/). */
  readonly root: string;
  /** Where the workers' logs go. */
  readonly folder: string;
  readonly databaseUrl: string;
  readonly temporalAddress: string;
  readonly taskQueue: string;
  readonly workflowBundle: string;
  readonly token: string;
  readonly ledger: ProcessLedger;
  readonly signal: AbortSignal;
  readonly log: (line: string) => void;
}

/** A running pair; `stop()` ends both (SIGTERM, the SDK drains them). */
export interface WorkerPair {
  readonly workers: readonly WorkerProcess[];
  stop(): Promise<void>;
}

/** Starts two workers at once; with `taskQueueActivitiesPerSecond`, each sets Temporal's task queue limit. */
export async function startWorkers(setup: WorkerSetup, name: string, taskQueueActivitiesPerSecond: number | null): Promise<WorkerPair> {
  const preload = path.join(__dirname, 'task-queue-limit.js');
  const logFiles = [1, 2].map((n) => path.join(setup.folder, `worker-${name}-${n}.log`));
  const workers = await Promise.all(
    logFiles.map(
      async (logFile) =>
        new WorkerProcess({
          root: setup.root,
          env: {
            TIDESYNC_CONFIG: path.join(setup.root, '.build', 'examples', 'demo', 'tidesync.config.js'),
            DATABASE_URL: setup.databaseUrl,
            TEMPORAL_ADDRESS: setup.temporalAddress,
            TIDESYNC_TASK_QUEUE: setup.taskQueue,
            TIDESYNC_WORKFLOW_BUNDLE: setup.workflowBundle,
            [DEMO_TOKEN_ENV]: setup.token,
            TIDESYNC_CODEC_KEY: '',
            ...(taskQueueActivitiesPerSecond === null ? {} : { [TASK_QUEUE_LIMIT_ENV]: String(taskQueueActivitiesPerSecond) }),
          },
          args: ['--no-relay'],
          nodeArgs: taskQueueActivitiesPerSecond === null ? [] : ['--require', preload],
          metricsPort: await freePort(),
          logFile,
          ledger: setup.ledger,
          log: setup.log,
          signal: setup.signal,
        }),
    ),
  );
  const stop = async () => void (await Promise.all(workers.map((w) => w.stop())));
  try {
    const ms = await Promise.all(workers.map((w) => w.start()));
    setup.log(`${name}: two workers ready after ${ms.join(' and ')} ms`);
    if (taskQueueActivitiesPerSecond !== null) {
      for (const file of logFiles) {
        const text = await readFile(file, 'utf8');
        if (!text.includes(`maxTaskQueueActivitiesPerSecond=${taskQueueActivitiesPerSecond}`)) {
          throw new Error(`the worker did not report maxTaskQueueActivitiesPerSecond=${taskQueueActivitiesPerSecond}; see ${file}`);
        }
      }
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { workers, stop };
}
