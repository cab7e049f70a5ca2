import { sql } from 'kysely';
import { seedContact, seedContacts } from '../examples/demo/local-contacts';
import { createTestDatabase } from './helpers';

describe("the demo's seed contacts", () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('should seed more contacts than one statement can carry (65,535 parameters), each as seedContact says, and only into an empty table', async () => {
    // Five parameters a row: one insert of 20,000 rows would need 100,000.
    expect(await seedContacts(database.app, 20_000)).toBe(20_000);
    const count = await sql<{ n: string; first: number; last: number }>`
      select count(*) as n, min(id) as first, max(id) as last from contacts`.execute(database.app);
    expect(count.rows[0]).toEqual({ n: '20000', first: 1, last: 20_000 });
    const rows = await sql<{ id: number; email: string; phone: string | null }>`
      select id, email, phone from contacts where id in (1, 13108, 20000) order by id`.execute(database.app);
    expect(rows.rows).toEqual([0, 13_107, 19_999].map((i) => ({ id: i + 1, email: seedContact(i).email, phone: seedContact(i).phone })));
    expect(await seedContacts(database.app, 5)).toBe(0);
  });
});
