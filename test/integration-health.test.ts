import { sql } from 'kysely';
import { recordRemoteFailure, recordRemoteSuccess } from '../src/store/integration-health';
import { upsertIntegration } from '../src/store/integrations';
import { createTestDatabase, uniqueName } from './helpers';

describe("the breaker's success reports", () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;

  beforeAll(async () => {
    database = await createTestDatabase();
    // Every UPDATE statement on integration_health, even one that changes no row.
    const schema = sql.id(database.databases.schema);
    await sql`create table public.health_updates (at timestamptz not null default now())`.execute(database.app);
    await sql`create function public.count_health_update() returns trigger language plpgsql as $$
      begin insert into public.health_updates default values; return null; end $$`.execute(database.app);
    await sql`create trigger count_health_update after update on ${schema}.integration_health
      for each statement execute function public.count_health_update()`.execute(database.app);
  });
  afterAll(async () => {
    await database?.drop();
  });

  const updates = async () =>
    Number((await sql<{ n: string }>`select count(*) as n from public.health_updates`.execute(database.app)).rows[0]?.n);

  it('should end a failure streak with fewer statements than reports when reports arrive together', async () => {
    const integration = await upsertIntegration(database.db, { type: 'demo', name: uniqueName('health'), breakerThreshold: 100 });
    for (let i = 0; i < 3; i++) await recordRemoteFailure(database.db, integration, 'remote answered 503');
    const health = () =>
      database.db.selectFrom('integration_health').selectAll().where('integration_id', '=', integration.id).executeTakeFirst();
    expect(await health()).toMatchObject({ consecutive_failures: 3 });

    const before = await updates();
    await Promise.all(Array.from({ length: 20 }, () => recordRemoteSuccess(database.db, integration.id)));
    const statements = (await updates()) - before;
    // One statement for the first report, one more for all that arrived while it ran.
    expect(statements).toBeGreaterThanOrEqual(1);
    expect(statements).toBeLessThanOrEqual(2);
    expect(await health()).toMatchObject({ state: 'healthy', consecutive_failures: 0 });

    // A failure after them starts a new streak, which the next report ends again.
    await recordRemoteFailure(database.db, integration, 'remote answered 503');
    expect(await health()).toMatchObject({ consecutive_failures: 1 });
    await recordRemoteSuccess(database.db, integration.id);
    expect(await health()).toMatchObject({ consecutive_failures: 0 });
  });
});
