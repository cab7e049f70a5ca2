/**
 * Statements compiled once per database handle (`src/store/prepared.ts`), run on the real
 * PostgreSQL: each call gets its own arguments in the right places, a handle on another schema
 * gets its own compilation, and a placeholder where Kysely makes no parameter is refused by name.
 */
import { type Kysely, sql } from 'kysely';
import { prepared } from '../src/store/prepared';
import { createTestDatabase } from './helpers';

interface Db {
  item: { id: number; label: string; size: number };
}

describe('prepared statements', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;

  beforeAll(async () => {
    database = await createTestDatabase();
    for (const schema of ['prep_a', 'prep_b']) {
      await sql`create schema ${sql.id(schema)}`.execute(database.app);
      await sql`create table ${sql.id(schema, 'item')} (id integer primary key, label text not null, size integer not null)`.execute(
        database.app,
      );
    }
    await sql`insert into prep_a.item values (1, 'a1', 10), (2, 'a2', 20), (3, 'a3', 30)`.execute(database.app);
    await sql`insert into prep_b.item values (1, 'b1', 10), (2, 'b2', 20)`.execute(database.app);
  });
  afterAll(async () => {
    await database?.drop();
  });

  const select = prepared(2, (db: Kysely<Db>, ids: number[], minSize: number) =>
    db
      .selectFrom('item')
      .select(['id', 'label'])
      .where('id', '=', sql<number>`any(${ids}::integer[])`)
      .where('size', '>=', minSize)
      .where('label', '<>', 'never')
      .orderBy('id'),
  );

  it('should run each call with its own arguments, constants kept, on the schema of its handle', async () => {
    const a = (database.app as Kysely<Db>).withSchema('prep_a');
    const b = (database.app as Kysely<Db>).withSchema('prep_b');
    expect((await select(a, [1, 2, 3], 20)).rows).toEqual([
      { id: 2, label: 'a2' },
      { id: 3, label: 'a3' },
    ]);
    expect((await select(a, [1, 3], 0)).rows).toEqual([
      { id: 1, label: 'a1' },
      { id: 3, label: 'a3' },
    ]);
    expect((await select(b, [1, 2, 3], 0)).rows.map((r) => r.label)).toEqual(['b1', 'b2']);
    // The first handle's compiled statement is still its own.
    expect((await select(a, [2], 0)).rows).toEqual([{ id: 2, label: 'a2' }]);
  });

  it('should refuse an argument that the query does not take as a parameter, naming it and the SQL', async () => {
    const inlined = prepared(2, (db: Kysely<Db>, id: number, limit: number) =>
      db
        .selectFrom('item')
        .select('id')
        .where('id', '=', id)
        .limit(sql.raw<number>(String(limit))),
    );
    await expect(inlined((database.app as Kysely<Db>).withSchema('prep_a'), 1, 5)).rejects.toThrow(
      /prepared statement: argument 1 is not a parameter of: select "id" from "prep_a"."item"/,
    );
  });
});
