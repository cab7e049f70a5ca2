/**
 * What the worker and the client share: the database, the connector registry, the service
 * registry and the loaded job definitions.
 */
import type { Kysely } from 'kysely';
import { registerBuiltinIntegrations } from './connectors';
import { EntityByIdReader, ORO_ENTITY_BY_ID_READER } from './connectors/readers/entity-by-id-reader';
import { ConnectorRegistry } from './connectors/registry';
import type { TidesyncDatabase } from './db/schema';
import type { JobDefinition } from './jobs/definition';
import { BUILTIN_JOBS_DIR, loadJobs, prepareJobs } from './jobs/loader';
import { applyConnectorEntities } from './jobs/resolve-parameters';
import { ServiceRegistry } from './jobs/service-registry';
import { ConfigurationError } from './connectors/errors';

/** The wired-up parts of tidesync. */
export interface Runtime {
  readonly db: Kysely<TidesyncDatabase>;
  readonly connectors: ConnectorRegistry;
  readonly services: ServiceRegistry;
  readonly jobs: ReadonlyMap<string, JobDefinition>;
}

/** Options of `createRuntime`. */
export interface RuntimeOptions {
  readonly db: Kysely<TidesyncDatabase>;
  /** Extra folders of job definition files, after the built-in ones. */
  readonly jobDirs?: readonly string[];
  /** Registers extra connectors and services (an application's own integrations). */
  readonly register?: (connectors: ConnectorRegistry, services: ServiceRegistry) => void;
  /** Check readers' parameters against the database (the worker does; the client need not). */
  readonly prepare?: boolean;
}

/** Builds the registries, loads and validates the job definitions. */
export async function createRuntime(options: RuntimeOptions): Promise<Runtime> {
  const connectors = new ConnectorRegistry();
  const services = new ServiceRegistry();
  services.register('reader', 'entity.by_id', new EntityByIdReader(options.db));
  services.register('reader', ORO_ENTITY_BY_ID_READER, services.get('reader', 'entity.by_id'));
  registerBuiltinIntegrations(connectors, services);
  options.register?.(connectors, services);

  const jobs = applyConnectorEntities(await loadJobs([BUILTIN_JOBS_DIR, ...(options.jobDirs ?? [])]), connectors.list());
  for (const connector of connectors.list()) {
    const job = connector.getExportJobName();
    if (!jobs.has(job)) {
      throw new ConfigurationError(
        `connector '${connector.integrationType}/${connector.name}' names export job '${job}', which no job definition declares`,
      );
    }
  }
  if (options.prepare ?? true) await prepareJobs(jobs.values(), services);
  return { db: options.db, connectors, services, jobs };
}

/** The job called `name`, or a `ConfigurationError` listing the known jobs. */
export function getJob(runtime: Pick<Runtime, 'jobs'>, name: string): JobDefinition {
  const job = runtime.jobs.get(name);
  if (!job) throw new ConfigurationError(`unknown job '${name}' (known: ${[...runtime.jobs.keys()].sort().join(', ') || 'none'})`);
  return job;
}
