import { sql } from 'kysely';
import pg from 'pg';
import { openDatabases } from '../src/store/db';
import { createTestDatabase, type TestDatabase } from '../src/testing';

/**
 * A PostgreSQL restart (fast shutdown) or an administrator ends every backend with FATAL 57P01.
 * A connection checked out of the pool between two queries (a transaction waiting on Temporal, as
 * the relay's does) then gets an 'error' event that nobody listened to: it crashed the worker.
 */
describe('the database pool when PostgreSQL cuts a connection off', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase(process.env['DATABASE_URL'] as string);
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('should fail only the transaction whose connection was terminated between two queries, and go on with a new connection', async () => {
    const { app, destroy } = openDatabases(database.url, { max: 2 });
    try {
      let resume: () => void = () => undefined;
      const paused = new Promise<void>((resolve) => (resume = resolve));
      let backend: (pid: number) => void = () => undefined;
      const backendPid = new Promise<number>((resolve) => (backend = resolve));
      const transaction = app.transaction().execute(async (trx) => {
        const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx);
        backend(rows[0]?.pid ?? 0);
        await paused; // idle in the transaction: checked out, no query running
        await sql`select 1`.execute(trx);
      });
      const outcome = transaction.then(
        () => 'committed',
        (error: unknown) => (error as Error).message,
      );

      const admin = new pg.Client({ connectionString: database.url });
      await admin.connect();
      try {
        await admin.query('select pg_terminate_backend($1)', [await backendPid]);
      } finally {
        await admin.end();
      }
      // Let the FATAL message arrive while no query runs on that connection.
      await new Promise((resolve) => setTimeout(resolve, 300));
      resume();

      expect(await outcome).not.toBe('committed');
      const { rows } = await sql<{ one: number }>`select 1 as one`.execute(app);
      expect(rows).toEqual([{ one: 1 }]);
    } finally {
      await destroy();
    }
  });
});
