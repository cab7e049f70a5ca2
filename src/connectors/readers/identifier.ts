/**
 * Entity ids against a table's identifier columns, for the `entity.by_id` reader and its keyset
 * pages: an id's values in identifier order, and the id of a row.
 */
import type { EntityId } from '../../entity-id';
import { encodeEntityId } from '../../entity-id';
import { ConfigurationError } from '../../errors';
import type { Entity } from '../connector';

/** The identifier of a table: one column, or several (a composite id) in this order. */
export interface TableIdentifier {
  readonly table: string;
  readonly identifier: readonly string[];
}

/** The id's values in identifier order; a composite id must name every identifier column. */
export function idValues(id: EntityId, p: TableIdentifier): Array<string | number> {
  if (typeof id === 'string' || typeof id === 'number') {
    if (p.identifier.length > 1) {
      throw new ConfigurationError(
        `id ${JSON.stringify(id)} is a single value but table '${p.table}' has a composite identifier (${p.identifier.join(', ')})`,
      );
    }
    return [id];
  }
  const extra = Object.keys(id).filter((k) => !p.identifier.includes(k));
  if (extra.length > 0) {
    throw new ConfigurationError(`id ${JSON.stringify(id)} names columns that are not identifiers of '${p.table}': ${extra.join(', ')}`);
  }
  return p.identifier.map((column) => {
    const value = id[column];
    if (value === undefined) throw new ConfigurationError(`id ${JSON.stringify(id)} has no value for identifier column '${column}'`);
    return value;
  });
}

/** The key of an id as the reader reports it (`encodeEntityId` of the id in identifier columns). */
export function idKey(id: EntityId, p: TableIdentifier): string {
  const values = idValues(id, p);
  if (p.identifier.length === 1) return String(values[0]);
  return encodeEntityId(Object.fromEntries(p.identifier.map((c, i) => [c, values[i] as string | number])));
}

/** The id of a row: its identifier columns (dates as ISO text, so the id survives JSON). */
export function rowId(row: Entity, p: TableIdentifier): EntityId {
  const value = (column: string): string | number => {
    const v = row[column];
    if (v instanceof Date) return v.toISOString();
    return typeof v === 'number' ? v : String(v);
  };
  if (p.identifier.length === 1) return value(p.identifier[0] as string);
  return Object.fromEntries(p.identifier.map((c) => [c, value(c)]));
}
