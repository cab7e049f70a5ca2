/**
 * Migration `2026_12_14_001_rate_limits`: the limits an integration declares for its remote
 * (requests per second, concurrent requests; null: unlimited), and the shared state of each
 * integration's limiter (`integration_throttle`): the next free request slot, the pause a 429
 * asked for, and the reduced rate after it. Released migrations are never edited: add a new one.
 */
import { type Kysely, type Migration, sql } from 'kysely';

/** The migration for tidesync's tables in `schema`. */
export function rateLimits(schema: string): Migration {
  const q = (name: string) => sql.id(schema, name);
  return {
    async up(root: Kysely<unknown>): Promise<void> {
      await sql`
        alter table ${q('integration')}
          add column rate_limit_rps double precision check (rate_limit_rps > 0),
          add column max_concurrent integer check (max_concurrent > 0)`.execute(root);

      // One row per integration whose limiter ever ran or that the remote ever told to slow down;
      // updated with single atomic statements, times are the database's so workers agree.
      await sql`
        create table ${q('integration_throttle')} (
          integration_id integer primary key references ${q('integration')} (id) on delete cascade,
          next_at timestamptz not null default now(),
          paused_until timestamptz,
          reduced_rps double precision,
          recover_from timestamptz,
          cut_at timestamptz,
          throttles integer not null default 0,
          last_throttled_at timestamptz,
          last_retry_after_ms bigint,
          updated_at timestamptz not null default now()
        )`.execute(root);
    },
  };
}
