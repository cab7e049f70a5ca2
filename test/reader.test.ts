import { type Kysely, sql } from 'kysely';
import { EntityByIdReader } from '../src/connectors/readers/entity-by-id-reader';
import { createTestDatabase } from './helpers';

describe('entity.by_id reader', () => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let db: Kysely<any>;
  let drop: () => Promise<void>;
  let reader: EntityByIdReader;
  const single = { table: 'products', identifier: 'id' };
  const composite = { table: 'stock', identifier: ['warehouse', 'sku'] };

  beforeAll(async () => {
    ({ app: db, drop } = await createTestDatabase());
    await sql`create table products (id integer primary key, name text not null, price numeric)`.execute(db);
    await sql`insert into products values (1, 'kettle', 20.5), (2, 'toaster', 35), (3, 'mug', 4)`.execute(db);
    await sql`create table stock (warehouse text, sku text, qty integer, primary key (warehouse, sku))`.execute(db);
    await sql`insert into stock values ('north', 'A;1', 5), ('north', 'B=2', 7), ('south', 'A;1', 9)`.execute(db);
    reader = new EntityByIdReader(db);
  });
  afterAll(async () => drop());

  it('should read many single ids in one query and report the missing one', async () => {
    const result = await reader.read([1, '3', 99], single);
    expect(result.found.map((f) => [f.key, f.entity['name']])).toEqual(
      expect.arrayContaining([
        ['1', 'kettle'],
        ['3', 'mug'],
      ]),
    );
    expect(result.found).toHaveLength(2);
    expect(result.missing).toEqual(['99']);
  });

  it('should read composite ids, including values with separators in them', async () => {
    const result = await reader.read(
      [
        { warehouse: 'north', sku: 'A;1' },
        { sku: 'B=2', warehouse: 'north' },
        { warehouse: 'east', sku: 'A;1' },
      ],
      composite,
    );
    const byKey = Object.fromEntries(result.found.map((f) => [f.key, f.entity['qty']]));
    expect(byKey).toEqual({ 'sku=A%3B1;warehouse=north': 5, 'sku=B%3D2;warehouse=north': 7 });
    expect(result.missing).toEqual(['sku=A%3B1;warehouse=east']);
  });

  it('should read only the configured columns', async () => {
    const result = await reader.read([2], { ...single, columns: ['id', 'name'] });
    expect(result.found[0]?.entity).toEqual({ id: 2, name: 'toaster' });
  });

  it('should read a range of rows in identifier order, whole or with only the identifier columns', async () => {
    const whole = await reader.readRange({ after: { warehouse: 'north', sku: 'A;1' }, upTo: null }, composite);
    expect(whole.map((f) => f.entity)).toEqual([
      { warehouse: 'north', sku: 'B=2', qty: 7 },
      { warehouse: 'south', sku: 'A;1', qty: 9 },
    ]);
    const ids = await reader.readRange({ after: { warehouse: 'north', sku: 'A;1' }, upTo: null, idsOnly: true }, composite);
    expect(ids.map((f) => [f.key, f.entity])).toEqual([
      ['sku=B%3D2;warehouse=north', { warehouse: 'north', sku: 'B=2' }],
      ['sku=A%3B1;warehouse=south', { warehouse: 'south', sku: 'A;1' }],
    ]);
    expect((await reader.readRange({ after: 1, upTo: 3, idsOnly: true }, { ...single, columns: ['name'] })).map((f) => f.entity)).toEqual([
      { id: 2 },
      { id: 3 },
    ]);
  });

  it('should reject a single value for a composite identifier and an incomplete composite id', async () => {
    await expect(reader.read(['north'], composite)).rejects.toThrow(/composite identifier \(warehouse, sku\)/);
    await expect(reader.read([{ warehouse: 'north' }], composite)).rejects.toThrow(/has no value for identifier column 'sku'/);
  });

  it('should reject table and column names that are not in the catalog', async () => {
    await expect(reader.prepare({ table: 'products"; drop table products; --', identifier: 'id' })).rejects.toThrow(
      /table 'public\.products"; drop table products; --' does not exist/,
    );
    await expect(reader.prepare({ table: 'products', identifier: 'id', columns: ['nme'] })).rejects.toThrow(
      "column 'nme' does not exist in table 'public.products'",
    );
    await expect(reader.read([1], { table: 'products' })).rejects.toThrow(/entity\.by_id identifier/);
    const count = await sql<{ n: string }>`select count(*) as n from products`.execute(db);
    expect(count.rows[0]?.n).toBe('3');
  });
});
