/**
 * Fills the reader parameters a job leaves out from the connector that exports with it. In Oro the
 * connector knows its entity, so `batch_job.yml` steps say `parameters: ~`; here a connector's
 * `entity` plays that part for the steps that read with `entity.by_id`.
 */
import type { Connector, ConnectorEntity, StepParameters } from '../connectors/connector';
import { ConfigurationError } from '../errors';
import { DEFAULT_SCHEMA, isEntityByIdReader } from '../connectors/readers/entity-by-id-reader';
import type { JobDefinition } from './definition';

/**
 * Returns the jobs with each `entity.by_id` step's parameters filled from the entity of the
 * connector whose export job it is; parameters the step sets win. A job exported by two connectors
 * that name different entities is a `ConfigurationError`. The jobs given are not changed.
 */
export function applyConnectorEntities(
  jobs: ReadonlyMap<string, JobDefinition>,
  connectors: readonly Connector[],
): Map<string, JobDefinition> {
  const entities = new Map<string, { readonly connector: Connector; readonly entity: ConnectorEntity }>();
  for (const connector of connectors) {
    if (!connector.entity) continue;
    const jobName = connector.getExportJobName();
    const earlier = entities.get(jobName);
    if (!earlier) {
      entities.set(jobName, { connector, entity: connector.entity });
    } else if (describe(earlier.entity) !== describe(connector.entity)) {
      throw new ConfigurationError(
        `connectors '${label(earlier.connector)}' and '${label(connector)}' both export with job '${jobName}' but name ` +
          `different entities (${describe(earlier.entity)} and ${describe(connector.entity)}): give them one entity or a job each`,
      );
    }
  }

  const resolved = new Map(jobs);
  for (const [jobName, { entity }] of entities) {
    // A connector naming an undeclared job is reported by createRuntime, with the other connectors.
    const job = jobs.get(jobName);
    if (!job) continue;
    resolved.set(jobName, {
      ...job,
      steps: job.steps.map((step) => (isEntityByIdReader(step.reader) ? { ...step, parameters: fill(step.parameters, entity) } : step)),
    });
  }
  return resolved;
}

/** The entity's parameters under the step's own; none when the step reads another table. */
function fill(parameters: StepParameters, entity: ConnectorEntity): StepParameters {
  // The connector's identifier and columns belong to its table: a step reading another table
  // (another name, or the same name in another schema) keeps its parameters as they are. A table
  // the step names without a schema is in the reader's default schema, not the connector's.
  const named = parameters['table'] !== undefined;
  const table: unknown = parameters['table'] ?? entity.table;
  const schema: unknown = parameters['schema'] ?? (named ? DEFAULT_SCHEMA : (entity.schema ?? DEFAULT_SCHEMA));
  if (table !== entity.table || schema !== (entity.schema ?? DEFAULT_SCHEMA)) return parameters;
  return {
    ...(entity.schema !== undefined ? { schema: entity.schema } : {}),
    table: entity.table,
    identifier: entity.identifier,
    ...(entity.columns !== undefined ? { columns: entity.columns } : {}),
    ...parameters,
  };
}

/** The entity in a normal form (schema and identifier list spelled out), for comparing and messages. */
function describe(entity: ConnectorEntity): string {
  return JSON.stringify({
    schema: entity.schema ?? DEFAULT_SCHEMA,
    table: entity.table,
    identifier: typeof entity.identifier === 'string' ? [entity.identifier] : entity.identifier,
    ...(entity.columns !== undefined ? { columns: entity.columns } : {}),
  });
}

function label(connector: Connector): string {
  return `${connector.integrationType}/${connector.name}`;
}
