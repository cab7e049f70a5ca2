/**
 * Configuration from the environment. Every variable tidesync reads is named here (and in the
 * README), with its default.
 */

/** The task queue tidesync's workers poll unless configured otherwise. */
export const DEFAULT_TASK_QUEUE = 'tidesync';

/** Settings read from the environment. */
export interface TidesyncConfig {
  /** `DATABASE_URL`: PostgreSQL to use; unset = the embedded one (dev) or a running dev stack. */
  readonly databaseUrl: string | undefined;
  /** `TEMPORAL_ADDRESS`: Temporal frontend host:port; unset = the dev server (dev) or a running dev stack. */
  readonly temporalAddress: string | undefined;
  /** `TEMPORAL_NAMESPACE`, default `default`. */
  readonly namespace: string;
  /** `TIDESYNC_TASK_QUEUE`, default `tidesync`. */
  readonly taskQueue: string;
  /** `TIDESYNC_JOBS_DIR`: extra folders of job definition files, separated by `:`. */
  readonly jobDirs: readonly string[];
}

/** Reads the configuration from `env`. */
export function readConfig(env: NodeJS.ProcessEnv = process.env): TidesyncConfig {
  return {
    databaseUrl: env['DATABASE_URL'] || undefined,
    temporalAddress: env['TEMPORAL_ADDRESS'] || undefined,
    namespace: env['TEMPORAL_NAMESPACE'] || 'default',
    taskQueue: env['TIDESYNC_TASK_QUEUE'] || DEFAULT_TASK_QUEUE,
    jobDirs: (env['TIDESYNC_JOBS_DIR'] ?? '').split(':').filter((d) => d !== ''),
  };
}
