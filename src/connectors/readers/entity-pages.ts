/**
 * Keyset pages of the `entity.by_id` reader's table, for bulk exports: rows in identifier order
 * after a cursor (composite identifiers compare as rows: `(a, b) > ($1, $2)`, ordered by a, b),
 * the ids that end the next pages, and row counts, optionally under a named filter. Filters are
 * SQL the developer declares in the job's YAML (`filters: { active: "status <> 'draft'" }`); a
 * bulk export names one, and nothing else from its input ever becomes SQL.
 */
import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { EntityId } from '../../entity-id';
import { ConfigurationError } from '../../errors';
import type { Entity, KeysetRange, PagePlan } from '../connector';
import { type TableIdentifier, idValues, rowId } from './identifier';

/** What the page queries need of the reader's parameters. */
export interface PagedTable extends TableIdentifier {
  readonly schema: string;
  readonly columns: readonly string[] | undefined;
  /** Named filters: name -> SQL condition on the table. */
  readonly filters: Readonly<Record<string, string>>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

/** The SQL of a named filter, or a `ConfigurationError` listing the declared ones. */
export function filterSql(p: PagedTable, name: string): string {
  const condition = p.filters[name];
  if (condition === undefined) {
    const declared = Object.keys(p.filters).sort().join(', ') || 'none';
    throw new ConfigurationError(
      `unknown filter '${name}' for table '${p.schema}.${p.table}' (declared in the step's parameters: ${declared})`,
    );
  }
  return condition;
}

/** Runs every declared filter once against the table, so a broken one is reported at start. */
export async function checkFilters(db: AnyDb, p: PagedTable): Promise<void> {
  for (const [name, condition] of Object.entries(p.filters)) {
    try {
      await sql`select 1 from ${sql.id(p.schema, p.table)} where (${sql.raw(condition)}) limit 0`.execute(db);
    } catch (err) {
      throw new ConfigurationError(
        `filter '${name}' of table '${p.schema}.${p.table}' is not valid SQL (${condition}): ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }
}

const ids = (p: PagedTable) => sql.join(p.identifier.map((c) => sql.id(c)));
const tuple = (id: EntityId, p: PagedTable) => sql.join(idValues(id, p));

/** The `where` condition of a range and a filter. */
function condition(p: PagedTable, range: KeysetRange): RawBuilder<unknown> {
  const parts: RawBuilder<unknown>[] = [];
  if (range.after !== null) parts.push(sql`(${ids(p)}) > (${tuple(range.after, p)})`);
  if (range.upTo !== null) parts.push(sql`(${ids(p)}) <= (${tuple(range.upTo, p)})`);
  if (range.filter !== undefined) parts.push(sql`(${sql.raw(filterSql(p, range.filter))})`);
  return parts.length === 0 ? sql`true` : sql.join(parts, sql` and `);
}

/** The rows of a range in identifier order, in one query. */
export async function readRangeRows(db: AnyDb, p: PagedTable, range: KeysetRange): Promise<Entity[]> {
  const columns = range.idsOnly
    ? p.identifier
    : p.columns
      ? [...p.columns, ...p.identifier.filter((c) => !p.columns?.includes(c))]
      : undefined;
  const select = columns ? sql.join(columns.map((c) => sql.id(c))) : sql`*`;
  const result =
    await sql<Entity>`select ${select} from ${sql.id(p.schema, p.table)} where ${condition(p, range)} order by ${ids(p)}`.execute(db);
  return result.rows;
}

/**
 * The ids ending the next `pages` pages of `pageSize` rows after `after`: every `pageSize`-th id,
 * and the last one when fewer rows are left. Reads the identifier of at most `pages * pageSize`
 * rows through the index, nothing else.
 */
export async function planRangePages(
  db: AnyDb,
  p: PagedTable,
  request: { after: EntityId | null; filter?: string | undefined; pageSize: number; pages: number },
): Promise<PagePlan> {
  const limit = request.pageSize * request.pages;
  const where = condition(p, { after: request.after, upTo: null, filter: request.filter });
  const result = await sql<Entity & { tidesync_total: string }>`
    select ${ids(p)}, tidesync_total from (
      select ${ids(p)}, row_number() over (order by ${ids(p)}) as tidesync_rn, count(*) over () as tidesync_total
      from (select ${ids(p)} from ${sql.id(p.schema, p.table)} where ${where} order by ${ids(p)} limit ${limit}) as tidesync_window
    ) as tidesync_numbered
    where tidesync_rn % ${request.pageSize} = 0 or tidesync_rn = tidesync_total
    order by tidesync_rn`.execute(db);
  const total = Number(result.rows[0]?.tidesync_total ?? 0);
  return { boundaries: result.rows.map((row) => rowId(row, p)), end: total < limit };
}

/** How many rows a filter (or the whole table) holds. */
export async function countRangeRows(db: AnyDb, p: PagedTable, filter: string | undefined): Promise<number> {
  const where = condition(p, { after: null, upTo: null, filter });
  const result = await sql<{ n: string }>`select count(*) as n from ${sql.id(p.schema, p.table)} where ${where}`.execute(db);
  return Number(result.rows[0]?.n ?? 0);
}
