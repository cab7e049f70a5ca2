/** The demo application's own `contacts` table and its seed data. */
import { type Kysely, sql } from 'kysely';

/** A row of the demo `contacts` table. */
export interface LocalContact {
  id: number;
  first_name: string;
  last_name: string | null;
  email: string | null;
  phone: string | null;
  company: string | null;
  crm_id: string | null;
  updated_at: Date;
}

const FIRST = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Frances', 'Ken', 'Margaret', 'Niklaus'];
const LAST = ['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Knuth', 'Allen', 'Thompson', 'Hamilton', 'Wirth'];
const COMPANY = ['Analytical Engines', 'COBOL Works', null, 'Structured Ltd', 'Abstraction Inc'];

/** Creates the `contacts` table when it does not exist yet. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function ensureContactsTable(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('contacts')
    .ifNotExists()
    .addColumn('id', 'serial', (col) => col.primaryKey())
    .addColumn('first_name', 'text', (col) => col.notNull())
    .addColumn('last_name', 'text')
    .addColumn('email', 'text')
    .addColumn('phone', 'text')
    .addColumn('company', 'text')
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();
  // The CRM's id, written back by the export job (tables from older demo runs lack it).
  await sql`alter table contacts add column if not exists crm_id text`.execute(db);
}

/** The i-th seed contact (deterministic, so reruns and tests agree). */
export function seedContact(i: number): Omit<LocalContact, 'id' | 'updated_at' | 'crm_id'> {
  const first = FIRST[i % FIRST.length] as string;
  const last = LAST[Math.floor(i / FIRST.length) % LAST.length] as string;
  return {
    first_name: first,
    last_name: last,
    email: `${first}.${last}.${i}@example.com`.toLowerCase(),
    phone: i % 3 === 0 ? null : `+1-555-${String(1000 + i).padStart(4, '0')}`,
    company: COMPANY[i % COMPANY.length] ?? null,
  };
}

/**
 * Rows per insert when seeding: PostgreSQL takes at most 65,535 parameters a statement, and a seed
 * row has five, so one insert of 100,000 contacts would be refused.
 */
const SEED_ROWS_PER_INSERT = 5_000;

/** Inserts `count` seed contacts if the table is empty (in one transaction); returns how many rows were added. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function seedContacts(db: Kysely<any>, count: number): Promise<number> {
  const existing = await db.selectFrom('contacts').select(db.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
  if (Number(existing.n) > 0 || count <= 0) return 0; // an insert of no rows is not valid SQL
  await db.transaction().execute(async (trx) => {
    for (let start = 0; start < count; start += SEED_ROWS_PER_INSERT) {
      const rows = Array.from({ length: Math.min(SEED_ROWS_PER_INSERT, count - start) }, (_, i) => seedContact(start + i));
      await trx.insertInto('contacts').values(rows).execute();
    }
  });
  return count;
}
