/**
 * The `entity.by_id` reader (Oro's `oro_integration.reader.entity.by_id`): reads entities of a
 * configured table by id, many ids in one query, with single or composite identifiers.
 */
import { type Expression, type Kysely, type SqlBool, sql } from 'kysely';
import { z } from 'zod';
import { type EntityId, encodeEntityId } from '../../entity-id';
import type { Entity, KeysetRange, PagePlan, ReadResult, Reader, StepParameters } from '../connector';
import { checkFilters, countRangeRows, planRangePages, readRangeRows } from './entity-pages';
import { ConfigurationError } from '../../errors';
import { idValueProblem } from './id-types';
import { idKey, idValues, rowId } from './identifier';

/** The name the built-in reader is registered under in the service registry. */
export const ENTITY_BY_ID_READER = 'entity.by_id';

/** Oro's name of the same reader, so a `batch_job.yml` can be used as it is. */
export const ORO_ENTITY_BY_ID_READER = 'oro_integration.reader.entity.by_id';

/** True when a step's reader is `entity.by_id` under either of its names. */
export function isEntityByIdReader(name: string): boolean {
  return name === ENTITY_BY_ID_READER || name === ORO_ENTITY_BY_ID_READER;
}

/** The schema of a table named without one. */
export const DEFAULT_SCHEMA = 'public';

const parametersSchema = z.strictObject({
  schema: z.string().min(1).default(DEFAULT_SCHEMA),
  table: z.string().min(1),
  /** One column, or several for a composite id (in this order when encoded). */
  identifier: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  /** Columns to read; all when omitted. */
  columns: z.array(z.string().min(1)).min(1).optional(),
  /** Named SQL conditions a bulk export may be limited to (`tidesync export --all --filter NAME`). */
  filters: z.record(z.string().regex(/^[a-z][a-z0-9_]*$/, 'filter names are lower_snake_case'), z.string().min(1)).optional(),
});

/** Parameters of `entity.by_id`, after defaults. */
export interface EntityByIdParameters {
  readonly schema: string;
  readonly table: string;
  readonly identifier: readonly string[];
  readonly columns: readonly string[] | undefined;
  /** Named filters for bulk exports: name -> SQL condition on the table. */
  readonly filters: Readonly<Record<string, string>>;
}

/** Validates and normalises the step's parameters; the message names the bad field. */
export function parseEntityByIdParameters(parameters: StepParameters): EntityByIdParameters {
  const parsed = parametersSchema.safeParse(parameters);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigurationError(`entity.by_id ${issue?.path.join('.') || 'parameters'}: ${issue?.message}`);
  }
  const { schema, table, identifier, columns, filters } = parsed.data;
  return { schema, table, identifier: typeof identifier === 'string' ? [identifier] : identifier, columns, filters: filters ?? {} };
}

/** Reads rows of any application table by id. Table and columns are checked against the catalog. */
export class EntityByIdReader implements Reader {
  // The table is only known at run time, so this reader uses an untyped Kysely view of the database.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly #db: Kysely<any>;
  /** Tables already checked against the catalog, by `schema.table`. */
  readonly #checked = new Set<string>();
  /** Column types of tables whose ids were checked, by `schema.table`. */
  readonly #types = new Map<string, ReadonlyMap<string, string>>();

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  constructor(db: Kysely<any>) {
    this.#db = db;
  }

  /** Checks that the table and every named column exist, so configuration cannot inject SQL. */
  async prepare(parameters: StepParameters): Promise<void> {
    const p = parseEntityByIdParameters(parameters);
    const rows = await this.#db
      .selectFrom('information_schema.columns')
      .select('column_name')
      .where('table_schema', '=', p.schema)
      .where('table_name', '=', p.table)
      .execute();
    if (rows.length === 0) throw new ConfigurationError(`table '${p.schema}.${p.table}' does not exist`);
    const known = new Set(rows.map((r: { column_name: string }) => r.column_name));
    for (const column of [...p.identifier, ...(p.columns ?? [])]) {
      if (!known.has(column)) {
        throw new ConfigurationError(`column '${column}' does not exist in table '${p.schema}.${p.table}'`);
      }
    }
    await checkFilters(this.#db, p);
    this.#checked.add(`${p.schema}.${p.table}`);
  }

  /** The rows of a keyset range, in identifier order, in one query. */
  async readRange(range: KeysetRange, parameters: StepParameters): Promise<ReadResult['found']> {
    const p = await this.#prepared(parameters);
    const rows = await readRangeRows(this.#db, p, range);
    return rows.map((row) => {
      const id = rowId(row, p);
      return { id, key: encodeEntityId(id), entity: row };
    });
  }

  /** The ids that end the next pages of a bulk export (see `entity-pages.ts`). */
  async planPages(
    request: { after: EntityId | null; filter?: string | undefined; pageSize: number; pages: number },
    parameters: StepParameters,
  ): Promise<PagePlan> {
    return planRangePages(this.#db, await this.#prepared(parameters), request);
  }

  /** How many rows the table (or a named filter) holds. */
  async countRows(request: { filter?: string | undefined }, parameters: StepParameters): Promise<number> {
    return countRangeRows(this.#db, await this.#prepared(parameters), request.filter);
  }

  /** The filters the step declares. */
  filterNames(parameters: StepParameters): string[] {
    return Object.keys(parseEntityByIdParameters(parameters).filters).sort();
  }

  async #prepared(parameters: StepParameters): Promise<EntityByIdParameters> {
    const p = parseEntityByIdParameters(parameters);
    if (!this.#checked.has(`${p.schema}.${p.table}`)) await this.prepare(parameters);
    return p;
  }

  /**
   * Checks each id's shape (one value, or every identifier column) and values against the
   * identifier columns' types: `abc` for an integer key is refused before anything is exported.
   */
  async checkIds(ids: readonly EntityId[], parameters: StepParameters): Promise<Array<string | null>> {
    const p = parseEntityByIdParameters(parameters);
    const types = await this.#identifierTypes(p);
    return ids.map((id) => {
      let values: Array<string | number>;
      try {
        values = idValues(id, p);
      } catch (err) {
        return (err as Error).message;
      }
      for (const [i, column] of p.identifier.entries()) {
        const type = types.get(column) ?? 'text';
        const problem = idValueProblem(values[i] as string | number, type);
        if (problem)
          return `entity id ${JSON.stringify(id)} is not valid for column '${column}' of ${p.schema}.${p.table} (${type}): ${problem}`;
      }
      return null;
    });
  }

  async #identifierTypes(p: EntityByIdParameters): Promise<ReadonlyMap<string, string>> {
    const table = `${p.schema}.${p.table}`;
    let types = this.#types.get(table);
    if (!types) {
      const rows = await this.#db
        .selectFrom('information_schema.columns')
        .select(['column_name', 'data_type'])
        .where('table_schema', '=', p.schema)
        .where('table_name', '=', p.table)
        .execute();
      if (rows.length === 0) throw new ConfigurationError(`table '${table}' does not exist`);
      types = new Map(rows.map((r: { column_name: string; data_type: string }) => [r.column_name, r.data_type]));
      this.#types.set(table, types);
    }
    return types;
  }

  /** Reads every id in one query; ids with no row are returned in `missing`. */
  async read(ids: readonly EntityId[], parameters: StepParameters): Promise<ReadResult> {
    const p = await this.#prepared(parameters);
    if (ids.length === 0) return { found: [], missing: [] };

    const wanted = new Map<string, EntityId>();
    for (const id of ids) wanted.set(idKey(id, p), id);

    const query = this.#db
      .withSchema(p.schema)
      .selectFrom(p.table)
      .where((eb) => {
        if (p.identifier.length === 1) {
          // One array parameter (its type taken from the column), not one parameter per id: a bulk
          // page reads 500 ids at a time again under their locks, and an IN list of 500 was a
          // statement of 500 parameters to build, compile, send, parse and plan each time.
          const column = p.identifier[0] as string;
          const values = [...wanted.values()].map((id) => idValues(id, p)[0]);
          return eb(eb.ref(column), '=', sql<string | number>`any(${values})`);
        }
        // Composite ids: (a = $1 and b = $2) or (a = $3 and b = $4) ...
        return eb.or(
          [...wanted.values()].map((id) => {
            const values = idValues(id, p);
            return eb.and(p.identifier.map((column, i) => eb(eb.ref(column), '=', values[i]))) as Expression<SqlBool>;
          }),
        );
      });
    const rows: Entity[] = p.columns
      ? await query.select(p.columns.map((c) => sql.ref(c).as(c))).execute()
      : await query.selectAll().execute();

    const found: Array<{ id: EntityId; key: string; entity: Entity }> = [];
    for (const row of rows) {
      const key = encodeEntityId(rowId(row, p));
      const id = wanted.get(key);
      if (id === undefined) continue;
      found.push({ id, key, entity: row });
      wanted.delete(key);
    }
    return { found, missing: [...wanted.keys()] };
  }
}
