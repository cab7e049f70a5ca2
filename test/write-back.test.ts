import { sql } from 'kysely';
// As an application imports them (the package's public API).
import { type StepDefinition, encodeEntityId, writeBackRemoteIds } from '../src';
import { createTestDatabase, waitFor } from './helpers';

const step = (parameters: Record<string, unknown>, column = 'remote'): StepDefinition => ({
  name: 'push',
  title: 'Push',
  reader: 'entity.by_id',
  processor: 'p',
  writer: 'w',
  parameters,
  writeBack: { column },
});

describe('writing remote ids back into local rows', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;

  beforeAll(async () => {
    database = await createTestDatabase();
    await sql`create domain wb_label as text not null`.execute(database.app);
    await sql`create table wb_plain (id integer primary key, label wb_label default 'x', remote text)`.execute(database.app);
    await sql`insert into wb_plain (id) select g from generate_series(1, 1500) g`.execute(database.app);
    await sql`create table wb_composite (tenant text, at timestamptz, num integer, remote uuid, primary key (tenant, at, num))`.execute(
      database.app,
    );
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('should write 1,200 remote ids in one call, each into its own row, and count only rows it changed', async () => {
    const records = Array.from({ length: 1200 }, (_, i) => ({ key: String(i + 1), remoteId: `r-${i + 1}` }));
    expect(await writeBackRemoteIds(database.app, step({ table: 'wb_plain', identifier: 'id' }), records)).toBe(1200);
    const rows = await sql<{ id: number; remote: string | null }>`select id, remote from wb_plain order by id`.execute(database.app);
    expect(rows.rows.filter((r) => r.remote !== `r-${r.id}`).map((r) => r.id)).toEqual(Array.from({ length: 300 }, (_, i) => 1201 + i));
    // Already there: nothing changes (a retried page writes back again).
    expect(await writeBackRemoteIds(database.app, step({ table: 'wb_plain', identifier: 'id' }), records.slice(0, 10))).toBe(0);
  });

  it('should find the rows of a page through the identifier index, not by scanning the whole table', async () => {
    // On one connection, which then flushes its table statistics (the insert counts a scan) for the others to read.
    await database.app.connection().execute(async (db) => {
      await sql`create table wb_big (id integer primary key, remote text)`.execute(db);
      await sql`insert into wb_big (id) select g from generate_series(1, 30000) g`.execute(db);
      await sql`analyze wb_big`.execute(db);
      await sql`select pg_stat_force_next_flush()`.execute(db);
      await sql`select 1`.execute(db);
    });
    const scans = async () =>
      (
        await sql<{ seq: string; idx: string }>`select seq_scan::text as seq, coalesce(idx_scan, 0)::text as idx
          from pg_stat_user_tables where relname = 'wb_big'`.execute(database.app)
      ).rows[0] as { seq: string; idx: string };
    const before = await scans();
    const records = Array.from({ length: 500 }, (_, i) => ({ key: String(10_001 + i), remoteId: `r-${i}` }));
    expect(await writeBackRemoteIds(database.app, step({ table: 'wb_big', identifier: 'id' }), records)).toBe(500);
    const after = await waitFor('the write-back to show in the table statistics', async () => {
      const now = await scans();
      // A backend flushes its statistics when idle, at most once a second.
      return (now.idx !== before.idx || now.seq !== before.seq) && now;
    });
    expect(Number(after.idx)).toBeGreaterThan(Number(before.idx));
    // A hash join over a sequential scan was the plan PostgreSQL chose for the join alone.
    expect(after.seq).toBe(before.seq);
  });

  it('should match composite ids with text, timestamp and integer parts, and cast the remote id to the column type', async () => {
    const at = new Date('2026-03-04T05:06:07.000Z');
    await sql`insert into wb_composite (tenant, at, num) values ('a,b"c', ${at}, 1), ('a,b"c', ${at}, 2), ('x', ${at}, 1)`.execute(
      database.app,
    );
    const uuid = '5b4c7c52-7c36-4d57-9d43-7f3f3a1e0b11';
    const key = encodeEntityId({ tenant: 'a,b"c', at: at.toISOString(), num: 2 });
    const changed = await writeBackRemoteIds(database.app, step({ table: 'wb_composite', identifier: ['tenant', 'at', 'num'] }), [
      { key, remoteId: uuid },
    ]);
    expect(changed).toBe(1);
    const rows = await sql<{ tenant: string; num: number; remote: string | null }>`
      select tenant, num, remote from wb_composite order by tenant, num`.execute(database.app);
    expect(rows.rows).toEqual([
      { tenant: 'a,b"c', num: 1, remote: null },
      { tenant: 'a,b"c', num: 2, remote: uuid },
      { tenant: 'x', num: 1, remote: null },
    ]);
  });

  it("should mark its update as tidesync's own for the table's triggers, and only that statement", async () => {
    await sql`create table wb_seen (id integer, origin text)`.execute(database.app);
    await sql`create function wb_seen() returns trigger language plpgsql as $$
      begin insert into wb_seen values (new.id, current_setting('tidesync.origin', true)); return null; end $$`.execute(database.app);
    await sql`create trigger wb_seen after update on wb_plain for each row execute function wb_seen()`.execute(database.app);
    await database.app.connection().execute(async (conn) => {
      const records = [1401, 1402, 1403].map((id) => ({ key: String(id), remoteId: `s-${id}` }));
      expect(await writeBackRemoteIds(conn, step({ table: 'wb_plain', identifier: 'id' }), records)).toBe(3);
      // The next statement on the same connection is the application's own again.
      await sql`update wb_plain set remote = 'app' where id = 1404`.execute(conn);
    });
    const seen = await sql<{ id: number; origin: string | null }>`select id, origin from wb_seen order by id`.execute(database.app);
    expect(seen.rows).toEqual([
      { id: 1401, origin: 'tidesync' },
      { id: 1402, origin: 'tidesync' },
      { id: 1403, origin: 'tidesync' },
      { id: 1404, origin: '' },
    ]);
  });

  it('should name a write-back column the table does not have', async () => {
    await expect(
      writeBackRemoteIds(database.app, step({ table: 'wb_plain', identifier: 'id' }, 'crm_ref'), [{ key: '1', remoteId: 'r' }]),
    ).rejects.toThrow("write_back: table 'public.wb_plain' has no column 'crm_ref'");
  });
});
