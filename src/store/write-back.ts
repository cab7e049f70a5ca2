/** Writes remote ids back into the local rows they came from (a step option: `write_back`). */
import { type Kysely, sql } from 'kysely';
import { parseEntityByIdParameters } from '../connectors/readers/entity-by-id-reader';
import { parseEntityId } from '../entity-id';
import { ConfigurationError } from '../errors';
import type { StepDefinition } from '../jobs/definition';
import { ORIGIN_SETTING } from './origin';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

/** Column types (`format_type`, e.g. `integer`, `character varying(20)`) by `schema.table`, per database handle. */
const columnTypes = new WeakMap<AnyDb, Map<string, ReadonlyMap<string, string>>>();

/**
 * Updates `write_back.column` of each record's row in one statement (a bulk page's 500 creates
 * were 500 updates); returns how many rows changed. The ids and remote ids travel as one array
 * per column, cast to the columns' own types so the identifier's index finds the rows.
 */
export async function writeBackRemoteIds(
  db: AnyDb,
  step: StepDefinition,
  records: ReadonlyArray<{ key: string; remoteId: string }>,
): Promise<number> {
  const column = step.writeBack?.column;
  if (!column || records.length === 0) return 0;
  const p = parseEntityByIdParameters(step.parameters);
  const columns = [...p.identifier, column];
  const types = await typesOf(db, p.schema, p.table, columns);
  const arrays = columns.map(() => [] as Array<string | number>);
  for (const record of records) {
    const id = parseEntityId(record.key);
    const values = typeof id === 'object' ? p.identifier.map((c) => id[c] as string | number) : [id];
    [...values, record.remoteId].forEach((value, i) => arrays[i]?.push(value));
  }
  // Names were checked against the catalog when the job was loaded and types come from it; sql.id quotes the names anyway.
  const unnest = sql.join(columns.map((c, i) => sql`${arrays[i]}::${sql.raw(types.get(c) as string)}[]`));
  // Each identifier column also as `= any(its array)`: with only the join, PostgreSQL estimates
  // the 500 unnested rows well and hashes the whole table for them (a sequential scan of every
  // row for every page: 23 ms against 4.6 ms at 35,000 rows, growing with the table); the extra
  // condition lets it find the rows through the identifier's index.
  const match = sql.join(
    p.identifier.flatMap((c, i) => [
      sql`t.${sql.id(c)} = v.${sql.id(c)}`,
      sql`t.${sql.id(c)} = any(${arrays[i]}::${sql.raw(types.get(c) as string)}[])`,
    ]),
    sql` and `,
  );
  // The origin marker is set by the statement itself (one round trip, not a transaction's four):
  // the one-row `origin` is joined to every row before it is updated, and capture triggers run
  // after the rows (AFTER ... FOR EACH ROW), so they see it; being local, it ends with the statement.
  const result = await sql`with origin as materialized (select set_config(${ORIGIN_SETTING}, 'tidesync', true))
    update ${sql.id(p.schema, p.table)} as t set ${sql.id(column)} = v.${sql.id(column)}
    from unnest(${unnest}) as v(${sql.join(columns.map((c) => sql.id(c)))}), origin
    where ${match} and t.${sql.id(column)} is distinct from v.${sql.id(column)}`.execute(db);
  return Number(result.numAffectedRows ?? 0n);
}

/** The types of `columns` of a table, as SQL (read once per table and database handle). */
async function typesOf(db: AnyDb, schema: string, table: string, columns: readonly string[]): Promise<ReadonlyMap<string, string>> {
  let tables = columnTypes.get(db);
  if (!tables) columnTypes.set(db, (tables = new Map()));
  const name = `${schema}.${table}`;
  let types = tables.get(name);
  if (!types || columns.some((c) => !types?.has(c))) {
    const rows = await sql<{ name: string; type: string }>`
      select a.attname as name, format_type(a.atttypid, a.atttypmod) as type
      from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = ${schema} and c.relname = ${table} and a.attnum > 0 and not a.attisdropped`.execute(db);
    types = new Map(rows.rows.map((r) => [r.name, r.type]));
    tables.set(name, types);
    const absent = columns.filter((c) => !types?.has(c));
    if (absent.length > 0)
      throw new ConfigurationError(`write_back: table '${name}' has no column ${absent.map((c) => `'${c}'`).join(', ')}`);
  }
  return types;
}
