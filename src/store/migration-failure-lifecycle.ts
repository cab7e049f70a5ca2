/**
 * Migration `2026_12_02_001_failure_lifecycle`: per-integration retry window and breaker settings,
 * the `failed` status of a sync state with its attempt count and time, and the breaker state of
 * each integration (`integration_health`). Released migrations are never edited: the defaults are
 * written out here as they were when it shipped (see `retry-policy.ts` for the reasons).
 */
import { type Kysely, type Migration, sql } from 'kysely';

/** The migration for tidesync's tables in `schema`. */
export function failureLifecycle(schema: string): Migration {
  const q = (name: string) => sql.id(schema, name);
  return {
    async up(root: Kysely<unknown>): Promise<void> {
      // 72 hours, 30 seconds, 10 failures: see DEFAULT_RETRY_WINDOW_MS and friends.
      await sql`
        alter table ${q('integration')}
          add column retry_window_ms bigint not null default 259200000 check (retry_window_ms > 0),
          add column probe_interval_ms integer not null default 30000 check (probe_interval_ms > 0),
          add column breaker_threshold integer not null default 10 check (breaker_threshold > 0)`.execute(root);

      // failed: the remote rejected the change for good, or transient failures outlasted the
      // retry window; kept (with the reason) until `retry-failed` or the entity's next change.
      await sql`
        alter table ${q('sync_state')}
          drop constraint sync_state_status_check,
          add constraint sync_state_status_check check (status in ('active', 'deleted', 'tombstone', 'remote_removed', 'failed')),
          add column attempts integer not null default 0,
          add column failed_at timestamptz`.execute(root);
      await sql`create index sync_state_failed_idx on ${q('sync_state')} (integration_id, connector, failed_at) where status = 'failed'`.execute(
        root,
      );

      // One row per integration that ever failed: the circuit breaker, updated by write activities
      // with single atomic statements (no lock held across a remote call).
      await sql`
        create table ${q('integration_health')} (
          integration_id integer primary key references ${q('integration')} (id) on delete cascade,
          state text not null default 'healthy' check (state in ('healthy', 'degraded')),
          consecutive_failures integer not null default 0,
          last_failure_at timestamptz,
          last_error text,
          degraded_at timestamptz,
          probe_at timestamptz,
          probes integer not null default 0,
          last_probe_at timestamptz,
          recovered_at timestamptz,
          updated_at timestamptz not null default now()
        )`.execute(root);
    },
  };
}
