/**
 * What the worker and the client share: the databases, the connector registry, the service
 * registry and the loaded job definitions. Built in two phases so a broken configuration is
 * reported before anything connects: `buildRegistries` (files only), then `createRuntime`.
 */
import type { Kysely } from 'kysely';
import type { TidesyncConfig } from './config/define-config';
import { ENTITY_BY_ID_READER, EntityByIdReader, ORO_ENTITY_BY_ID_READER } from './connectors/readers/entity-by-id-reader';
import { ConnectorRegistry } from './connectors/registry';
import { ConfigurationError } from './errors';
import type { JobDefinition } from './jobs/definition';
import { checkJobServices, loadJobs, prepareJobs } from './jobs/loader';
import { applyConnectorEntities } from './jobs/resolve-parameters';
import { ServiceRegistry } from './jobs/service-registry';
import type { Databases } from './store/db';
import type { EntityLocks } from './store/entity-locks';
import type { RemoteLimiter } from './store/remote-limiter';
import type { TidesyncDatabase } from './store/schema';

/** The registries and jobs of a configuration. */
export interface Registries {
  readonly connectors: ConnectorRegistry;
  readonly services: ServiceRegistry;
  readonly jobs: ReadonlyMap<string, JobDefinition>;
}

/** The wired-up parts of tidesync. */
export interface Runtime extends Registries {
  /** The application's tables (readers, write-backs, capture). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly app: Kysely<any>;
  /** tidesync's own tables. */
  readonly store: Kysely<TidesyncDatabase>;
  /** The schema of tidesync's tables. */
  readonly schema: string;
  /** Per-entity write locks (see `store/entity-locks.ts`). */
  readonly locks: EntityLocks;
  /** The integrations' rate limits (see `store/remote-limiter.ts`). */
  readonly limiter: RemoteLimiter;
}

/** What a runtime is built from: the application's declarations. */
export type RuntimeDeclarations = Pick<TidesyncConfig, 'connectors' | 'readers' | 'processors' | 'writers' | 'jobs'> & {
  /** Registers more connectors and services by code (tests, embedding applications). */
  readonly register?: (connectors: ConnectorRegistry, services: ServiceRegistry) => void;
};

/** Options of `createRuntime`. */
export interface RuntimeOptions extends RuntimeDeclarations {
  readonly databases: Databases;
  /** Check readers' parameters against the database (the worker does; the client need not). */
  readonly prepare?: boolean;
}

/**
 * Registers the declared connectors and services, loads the job folders, and checks that every
 * connector's job is declared and every service a job names is registered. Touches no server.
 */
export async function buildRegistries(declarations: RuntimeDeclarations): Promise<Registries> {
  const connectors = new ConnectorRegistry();
  const services = new ServiceRegistry();
  for (const connector of declarations.connectors ?? []) connectors.register(connector);
  for (const [name, reader] of Object.entries(declarations.readers ?? {})) services.register('reader', name, reader);
  for (const [name, processor] of Object.entries(declarations.processors ?? {})) services.register('processor', name, processor);
  for (const [name, writer] of Object.entries(declarations.writers ?? {})) services.register('writer', name, writer);
  declarations.register?.(connectors, services);

  const jobs = applyConnectorEntities(await loadJobs(declarations.jobs ?? []), connectors.list());
  for (const connector of connectors.list()) {
    const job = connector.getExportJobName();
    if (!jobs.has(job)) {
      throw new ConfigurationError(
        `connector '${connector.integrationType}/${connector.name}' names export job '${job}', which no job definition declares ` +
          `(declared: ${[...jobs.keys()].sort().join(', ') || 'none'}; job folders: ${(declarations.jobs ?? []).join(', ') || 'none'})`,
      );
    }
  }
  checkJobServices(jobs.values(), services, [ENTITY_BY_ID_READER, ORO_ENTITY_BY_ID_READER]);
  return { connectors, services, jobs };
}

/** Builds the registries, adds the built-in reader bound to the database, and prepares the jobs. */
export async function createRuntime(options: RuntimeOptions): Promise<Runtime> {
  const registries = await buildRegistries(options);
  const { app, store, schema, locks, limiter } = options.databases;
  // The built-in reader, under its name and Oro's, unless the application bound those names itself.
  const entityById = new EntityByIdReader(app);
  for (const name of [ENTITY_BY_ID_READER, ORO_ENTITY_BY_ID_READER]) {
    if (!registries.services.has('reader', name)) registries.services.register('reader', name, entityById);
  }
  if (options.prepare ?? true) await prepareJobs(registries.jobs.values(), registries.services);
  return { ...registries, app, store, schema, locks, limiter };
}

/** The job called `name`, or a `ConfigurationError` listing the known jobs. */
export function getJob(runtime: Pick<Runtime, 'jobs'>, name: string): JobDefinition {
  const job = runtime.jobs.get(name);
  if (!job) throw new ConfigurationError(`unknown job '${name}' (known: ${[...runtime.jobs.keys()].sort().join(', ') || 'none'})`);
  return job;
}
