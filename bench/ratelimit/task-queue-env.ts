/**
 * The variable the ratelimit bench passes Temporal's task queue limit in, to the workers it starts
 * with `task-queue-limit.js` preloaded (a module of its own: importing the preload would apply it).
 */
export const TASK_QUEUE_LIMIT_ENV = 'BENCH_TASK_QUEUE_ACTIVITIES_PER_SECOND';
