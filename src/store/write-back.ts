/** Writes remote ids back into the local rows they came from (a step option: `write_back`). */
import { type Kysely, sql } from 'kysely';
import { parseEntityByIdParameters } from '../connectors/readers/entity-by-id-reader';
import { parseEntityId } from '../entity-id';
import type { StepDefinition } from '../jobs/definition';
import { withTidesyncOrigin } from './origin';

/** Updates `write_back.column` of each record's row; returns how many rows changed. */
export async function writeBackRemoteIds(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  db: Kysely<any>,
  step: StepDefinition,
  records: ReadonlyArray<{ key: string; remoteId: string }>,
): Promise<number> {
  const column = step.writeBack?.column;
  if (!column) return 0;
  const p = parseEntityByIdParameters(step.parameters);
  // Names were checked against the catalog when the job was loaded; sql.id quotes them anyway.
  return withTidesyncOrigin(db, async (trx) => {
    let changed = 0;
    for (const record of records) {
      const id = parseEntityId(record.key);
      const values = typeof id === 'object' ? p.identifier.map((c) => id[c]) : [id];
      const where = sql.join(
        p.identifier.map((c, i) => sql`${sql.id(c)} = ${values[i]}`),
        sql` and `,
      );
      const result = await sql`update ${sql.id(p.schema, p.table)} set ${sql.id(column)} = ${record.remoteId}
        where ${where} and ${sql.id(column)} is distinct from ${record.remoteId}`.execute(trx);
      changed += Number(result.numAffectedRows ?? 0n);
    }
    return changed;
  });
}
