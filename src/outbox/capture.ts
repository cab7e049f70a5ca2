/**
 * Change capture without application code: triggers on a connector's table write outbox rows on
 * insert, on update of a watched field, and on delete. Writes tidesync makes itself run with an
 * origin marker (`withTidesyncOrigin`) and are not captured, so they never echo back as exports.
 */
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { isEntityByIdReader, parseEntityByIdParameters } from '../connectors/readers/entity-by-id-reader';
import { ConfigurationError } from '../errors';
import { getIntegration } from '../store/integrations';
import { ORIGIN_SETTING } from '../store/origin';
import { type Runtime, getJob } from '../runtime';

/** Which connector to capture, and which fields count as a change. */
export interface CaptureOptions {
  readonly integration: string;
  readonly connector: string;
  /** Columns whose change triggers an export; default: the reader's `columns`, else any column. */
  readonly fields?: readonly string[];
}

/** What `installCapture` installed. */
export interface CaptureInstallation {
  readonly table: string;
  readonly trigger: string;
  readonly identifier: readonly string[];
  /** Watched columns; empty means any change of the row. */
  readonly fields: readonly string[];
}

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;
const literal = (value: string) => `'${value.replace(/'/g, "''")}'`;

/** Finds the table and identifier the connector's export job reads with `entity.by_id`. */
async function captureTarget(runtime: Runtime, integrationName: string, connectorName: string) {
  const integration = await getIntegration(runtime.store, integrationName);
  const job = getJob(runtime, runtime.connectors.exportWorkflowType(integration.type, connectorName));
  const step = job.steps.find((s) => isEntityByIdReader(s.reader));
  if (!step) {
    throw new ConfigurationError(`job '${job.name}' has no step with the entity.by_id reader, so there is no table to capture`);
  }
  const parameters = parseEntityByIdParameters(step.parameters);
  const name = `tidesync_capture_${createHash('sha256').update(`${integration.name}\0${connectorName}`).digest('hex').slice(0, 12)}`;
  return { integration, connectorName, parameters, name, qualifiedTable: `${ident(parameters.schema)}.${ident(parameters.table)}` };
}

/** Installs (or replaces) the capture trigger of a connector's table. */
export async function installCapture(runtime: Runtime, options: CaptureOptions): Promise<CaptureInstallation> {
  const target = await captureTarget(runtime, options.integration, options.connector);
  const { parameters: p } = target;
  const columns = await runtime.app
    .selectFrom('information_schema.columns' as never)
    .select('column_name' as never)
    .where('table_schema' as never, '=', p.schema as never)
    .where('table_name' as never, '=', p.table as never)
    .execute();
  const known = new Set((columns as Array<{ column_name: string }>).map((c) => c.column_name));
  if (known.size === 0) throw new ConfigurationError(`table '${p.schema}.${p.table}' does not exist`);
  const fields = options.fields ?? p.columns?.filter((c) => !p.identifier.includes(c)) ?? [];
  for (const field of [...fields, ...p.identifier]) {
    if (!known.has(field)) throw new ConfigurationError(`field '${field}' does not exist in table '${p.schema}.${p.table}'`);
  }

  const enqueue = `${ident(runtime.schema)}.enqueue_export`;
  const idOf = (row: 'NEW' | 'OLD') =>
    p.identifier.length === 1
      ? `to_jsonb(${row}.${ident(p.identifier[0] as string)})`
      : `jsonb_build_object(${p.identifier.map((c) => `${literal(c)}, ${row}.${ident(c)}`).join(', ')})`;
  // enqueue_export inserts the outbox row and wakes the relays (see store/migrations.ts).
  const insert = (row: 'NEW' | 'OLD') =>
    `PERFORM ${enqueue}(${literal(target.integration.name)}, ${literal(target.connectorName)}, ${idOf(row)});`;
  const watched =
    fields.length > 0 ? fields.map((f) => `NEW.${ident(f)} IS DISTINCT FROM OLD.${ident(f)}`).join(' OR ') : 'NEW IS DISTINCT FROM OLD';
  const fn = `${ident(p.schema)}.${ident(target.name)}`;

  await runtime.app.transaction().execute(async (trx) => {
    await sql
      .raw(
        `CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $tidesync$
BEGIN
  -- tidesync's own writes (write-backs) carry an origin marker: they are not changes to export.
  IF current_setting('${ORIGIN_SETTING}', true) = 'tidesync' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'INSERT' THEN
    ${insert('NEW')}
  ELSIF TG_OP = 'DELETE' THEN
    ${insert('OLD')}
  ELSIF ${idOf('NEW')} IS DISTINCT FROM ${idOf('OLD')} THEN
    -- A changed key: the old entity is gone (its export deletes it remotely), the new one exported.
    ${insert('OLD')}
    ${insert('NEW')}
  ELSIF ${watched} THEN
    ${insert('NEW')}
  END IF;
  RETURN NULL;
END
$tidesync$`,
      )
      .execute(trx);
    await sql.raw(`DROP TRIGGER IF EXISTS ${ident(target.name)} ON ${target.qualifiedTable}`).execute(trx);
    await sql
      .raw(
        `CREATE TRIGGER ${ident(target.name)} AFTER INSERT OR UPDATE OR DELETE ON ${target.qualifiedTable} FOR EACH ROW EXECUTE FUNCTION ${fn}()`,
      )
      .execute(trx);
  });
  return { table: `${p.schema}.${p.table}`, trigger: target.name, identifier: p.identifier, fields };
}

/** Removes a connector's capture trigger; returns false when none was installed. */
export async function removeCapture(runtime: Runtime, options: Omit<CaptureOptions, 'fields'>): Promise<boolean> {
  const target = await captureTarget(runtime, options.integration, options.connector);
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where p.proname = ${target.name} and n.nspname = ${target.parameters.schema}`.execute(runtime.app);
  await runtime.app.transaction().execute(async (trx) => {
    await sql.raw(`DROP TRIGGER IF EXISTS ${ident(target.name)} ON ${target.qualifiedTable}`).execute(trx);
    await sql.raw(`DROP FUNCTION IF EXISTS ${ident(target.parameters.schema)}.${ident(target.name)}()`).execute(trx);
  });
  return (rows[0]?.n ?? 0) > 0;
}
