/**
 * `tidesync.config.ts`: what an application declares — its connectors, the readers, processors
 * and writers its jobs name, its job folders, and where its servers are. `defineConfig` checks the
 * shape at once and reports every bad field by its path.
 */
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { type CodecSettings, codecSettingsSchema } from '../codec/settings';
import type { Connector, Processor, Reader, Writer } from '../connectors/connector';
import { ConfigurationError } from '../errors';
import type { SecretResolver } from '../secrets';
import type { Tidesync } from '../start';
import { type TemporalSettings, temporalSettingsSchema } from '../temporal/settings';

/** What `tidesync dev` hands the config's `dev` hook (see `DevHook`). */
export interface DevContext {
  /** The running engine: database, client, worker and relay, on the embedded stack. */
  readonly tidesync: Tidesync;
  /** Command-line words after `tidesync dev`'s own options, for the hook to parse. */
  readonly args: readonly string[];
  /** Progress lines: stdout, or stderr with `--json` (stdout then carries only the summary). */
  readonly log: (line: string) => void;
  /** Temporal Web UI of the dev server, when it serves one. */
  readonly uiUrl: string | null;
  /** Resolves when the user asked to stop (Ctrl-C): long hooks should give up then. */
  readonly stopRequested: Promise<void>;
}

/** What a `dev` hook reports: printed as JSON with `--json`, and whether it went well (exit code). */
export interface DevResult {
  readonly ok: boolean;
  readonly summary: object;
  /** Stops what the hook started (a demo remote); called when `tidesync dev` stops, before the engine. */
  readonly close?: () => Promise<void>;
}

/**
 * What `tidesync dev` runs for the application: `setup` before the worker starts (create and seed
 * the tables its jobs read, which the worker checks at start), `run` once everything is up (start
 * a demo remote, export).
 */
export interface DevHook {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly setup?: (context: { readonly db: Kysely<any>; readonly args: readonly string[] }) => Promise<void>;
  readonly run?: (context: DevContext) => Promise<DevResult>;
}

/** The application's tidesync configuration; every field is optional. */
export interface TidesyncConfig {
  /** The connectors: each names its export job (declared in one of the `jobs` folders). */
  readonly connectors?: readonly Connector[];
  /** Readers by the name jobs use (`entity.by_id` is built in). */
  readonly readers?: Readonly<Record<string, Reader>>;
  /** Processors by the name jobs use. */
  readonly processors?: Readonly<Record<string, Processor>>;
  /** Writers by the name jobs use. */
  readonly writers?: Readonly<Record<string, Writer>>;
  /** Folders of job definition files (`*.yaml`), relative to the config file. */
  readonly jobs?: readonly string[];
  /** The task queue of the worker and the exports; default `tidesync` (`TIDESYNC_TASK_QUEUE` wins). */
  readonly taskQueue?: string;
  /** The application's PostgreSQL; `DATABASE_URL` wins over `url`. */
  readonly database?: {
    readonly url?: string;
    /** The schema of tidesync's own tables; default `tidesync`. */
    readonly schema?: string;
    /** Connections in the pool; default 10. */
    readonly poolSize?: number;
  };
  /** The Temporal cluster: address, namespace, TLS, API key (`TEMPORAL_*` variables win). */
  readonly temporal?: TemporalSettings;
  /** Worker tuning. */
  readonly worker?: {
    /** Activities one worker runs at once; default 50. */
    readonly maxConcurrentActivityTaskExecutions?: number;
  };
  /** The worker's /metrics and /healthz endpoint (off unless a port is set here, by --metrics-port or TIDESYNC_METRICS_PORT). */
  readonly metrics?: {
    readonly port?: number;
    /** Default `0.0.0.0`. */
    readonly host?: string;
  };
  /** The outbox: how long dispatched and skipped rows are kept (`7d` by default; pending rows always are). */
  readonly outbox?: {
    readonly retention?: string | number;
  };
  /** Resolves secret references (integrations', codec keys'); default `env:NAME` and `file:PATH`. */
  readonly resolveSecret?: SecretResolver;
  /**
   * Encrypts what tidesync writes into Temporal's history (AES-256-GCM): the first key encrypts,
   * every key decrypts. Off when absent. The Web UI reads it through `tidesync codec-server`.
   */
  readonly codec?: CodecSettings;
  /** What `tidesync dev` runs once the stack is up (the demo uses it). */
  readonly dev?: DevHook;
}

const fn = (what: string) => z.custom<(...args: never[]) => unknown>((v) => typeof v === 'function', `expected ${what}`);
const withMethods = (role: string, methods: readonly string[]) =>
  z.custom<object>(
    (v) => v !== null && typeof v === 'object' && methods.every((m) => typeof (v as Record<string, unknown>)[m] === 'function'),
    `expected a ${role} (an object with ${methods.map((m) => `${m}()`).join(' and ')})`,
  );
const name = z.string().min(1, 'expected a non-empty string');

const connectorSchema = z.looseObject({
  integrationType: name,
  name,
  getExportJobName: fn('getExportJobName(): the name of its export job'),
});

const configSchema = z.strictObject({
  connectors: z.array(connectorSchema).optional(),
  readers: z.record(name, withMethods('reader', ['prepare', 'read'])).optional(),
  processors: z.record(name, withMethods('processor', ['process'])).optional(),
  writers: z.record(name, withMethods('writer', ['write'])).optional(),
  jobs: z.array(name).optional(),
  taskQueue: name.optional(),
  database: z.strictObject({ url: name.optional(), schema: name.optional(), poolSize: z.number().int().positive().optional() }).optional(),
  temporal: temporalSettingsSchema.optional(),
  worker: z.strictObject({ maxConcurrentActivityTaskExecutions: z.number().int().positive().optional() }).optional(),
  metrics: z.strictObject({ port: z.number().int().min(0).max(65535).optional(), host: name.optional() }).optional(),
  outbox: z.strictObject({ retention: z.union([name, z.number().nonnegative()]).optional() }).optional(),
  resolveSecret: fn('a function (ref) => Promise<string>').optional(),
  codec: codecSettingsSchema.optional(),
  dev: z
    .strictObject({
      setup: fn('a function ({ db, args }) => Promise<void>').optional(),
      run: fn('a function (context) => Promise<{ ok, summary }>').optional(),
    })
    .optional(),
});

/** Checks a configuration's shape; the error lists each bad field by its path. */
export function validateConfig(config: unknown, source = 'tidesync config'): TidesyncConfig {
  const parsed = configSchema.safeParse(config);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`);
    throw new ConfigurationError(`${source}: ${problems.join('; ')}`);
  }
  // The parsed copy drops class prototypes (connectors are often class instances): keep the original.
  return config as TidesyncConfig;
}

/**
 * Declares the application's configuration (the default export of `tidesync.config.ts`). Checks
 * the shape now, so a mistake shows where it was made.
 */
export function defineConfig(config: TidesyncConfig): TidesyncConfig {
  return validateConfig(config);
}
