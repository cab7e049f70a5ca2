/**
 * Entity ids: a single value, or an object of column -> value for composite ids. Pure code, so
 * workflows, activities and the client encode ids the same way.
 */

/** A scalar id value. */
export type IdValue = string | number;

/** An entity id: one value, or named values for a composite id. */
export type EntityId = IdValue | Readonly<Record<string, IdValue>>;

/**
 * Encodes an id as a stable, readable string: `42` (for `42` and `{ id: 42 }` alike), or
 * `sku=A%3B1;tenant=1` for composite ids (columns sorted by name so every caller agrees, values
 * URI-encoded so `;` and `=` never clash).
 * Workflow ids, sync state and execution records all use this key.
 */
export function encodeEntityId(id: EntityId): string {
  if (typeof id === 'string' || typeof id === 'number') return String(id);
  const names = Object.keys(id).sort();
  // `{ id: 42 }` and `42` are one entity (a single-column identifier): one key, so one workflow.
  if (names.length === 1) return String(id[names[0] as string]);
  return names
    .map((name) => {
      const value = id[name];
      if (value === undefined) throw new Error(`composite id ${JSON.stringify(id)} has no value for column '${name}'`);
      return `${encodeURIComponent(name)}=${encodeURIComponent(String(value))}`;
    })
    .join(';');
}

/** Parses what `encodeEntityId` produced (or what a user typed on the command line). */
export function parseEntityId(text: string): EntityId {
  if (text === '') throw new Error('entity id is empty');
  if (!text.includes('=')) return text;
  const id: Record<string, string> = {};
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    const name = eq > 0 ? decodeURIComponent(part.slice(0, eq)) : '';
    if (name === '') throw new Error(`entity id '${text}' has a part without a column name: '${part}'`);
    id[name] = decodeURIComponent(part.slice(eq + 1));
  }
  return id;
}
