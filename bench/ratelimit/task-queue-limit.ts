/**
 * Preloaded into `tidesync worker` (`node --require`) by the third phase of `npm run bench --
 * ratelimit` only: every worker the process creates gets Temporal's
 * `maxTaskQueueActivitiesPerSecond` from `BENCH_TASK_QUEUE_ACTIVITIES_PER_SECOND`. The limit is
 * the server's, for the whole task queue (the pollers send it), and counts activity tasks started,
 * not remote requests. tidesync has no setting for it; the bench sets it this way rather than add one.
 */
import { Worker, type WorkerOptions } from '@temporalio/worker';
import { TASK_QUEUE_LIMIT_ENV } from './task-queue-env';

const given = process.env[TASK_QUEUE_LIMIT_ENV] ?? '';
const rate = Number(given);
if (!(Number.isFinite(rate) && rate > 0)) throw new Error(`${TASK_QUEUE_LIMIT_ENV} '${given}' is not a positive number`);

const create = Worker.create.bind(Worker);
Worker.create = (options: WorkerOptions): Promise<Worker> => {
  // The bench reads this line in the worker's log to know the option was applied.
  process.stderr.write(`bench: maxTaskQueueActivitiesPerSecond=${rate} on task queue ${options.taskQueue}\n`);
  return create({ ...options, maxTaskQueueActivitiesPerSecond: rate });
};
