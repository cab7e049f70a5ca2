/**
 * tidesync's schema migrations, run at start by kysely's `Migrator`. Every table, and the SQL
 * functions applications call to enqueue exports, lives in tidesync's own schema (`tidesync` by
 * default, as pg-boss and graphile-worker do), never in the application's `public`. Migrations are
 * code so they ship inside the compiled package. Never edit a released migration: add a new one.
 */
import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';
import { OUTBOX_CHANNEL } from '../outbox/channel';
import { DEFAULT_SCHEMA, checkSchemaName } from './db';
import { bulkExports } from './migration-bulk-exports';
import { failureLifecycle } from './migration-failure-lifecycle';
import { pendingCreate } from './migration-pending-create';
import { rateLimits } from './migration-rate-limits';
import { syncStateCascade } from './migration-sync-state-cascade';
import { syncStateRoom } from './migration-sync-state-room';

/** The migrations of tidesync's tables in `schema`, by name (kysely runs them in name order). */
function migrationsFor(schema: string): Record<string, Migration> {
  const q = (name: string) => sql.id(schema, name);
  return {
    '2026_11_26_001_initial': {
      async up(root: Kysely<unknown>): Promise<void> {
        const db = root.withSchema(schema);
        await db.schema
          .createTable('integration')
          .addColumn('id', 'serial', (col) => col.primaryKey())
          .addColumn('type', 'text', (col) => col.notNull())
          .addColumn('name', 'text', (col) => col.notNull().unique())
          .addColumn('enabled', 'boolean', (col) => col.notNull().defaultTo(true))
          .addColumn('two_way_sync', 'boolean', (col) => col.notNull().defaultTo(true))
          .addColumn('sync_priority', 'text', (col) =>
            col
              .notNull()
              .defaultTo('local')
              .check(sql`sync_priority in ('local', 'remote')`),
          )
          .addColumn('transport', 'jsonb', (col) => col.notNull().defaultTo(sql`'{}'::jsonb`))
          .addColumn('secret_ref', 'text')
          .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
          .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
          .execute();

        await db.schema
          .createTable('job_execution')
          .addColumn('id', 'bigserial', (col) => col.primaryKey())
          .addColumn('workflow_id', 'text', (col) => col.notNull())
          .addColumn('run_id', 'text', (col) => col.notNull())
          // One run exports again when changes arrive meanwhile: each pass is an iteration.
          .addColumn('iteration', 'integer', (col) => col.notNull().defaultTo(1))
          .addColumn('job', 'text', (col) => col.notNull())
          .addColumn('integration', 'text', (col) => col.notNull())
          .addColumn('connector', 'text', (col) => col.notNull())
          .addColumn('entity_ids', 'jsonb', (col) => col.notNull())
          .addColumn('status', 'text', (col) =>
            col.notNull().check(sql`status in ('running', 'completed', 'completed_with_failures', 'failed')`),
          )
          .addColumn('read_count', 'integer', (col) => col.notNull().defaultTo(0))
          .addColumn('processed_count', 'integer', (col) => col.notNull().defaultTo(0))
          .addColumn('written_count', 'integer', (col) => col.notNull().defaultTo(0))
          .addColumn('skipped_count', 'integer', (col) => col.notNull().defaultTo(0))
          .addColumn('failed_count', 'integer', (col) => col.notNull().defaultTo(0))
          .addColumn('warnings', 'jsonb', (col) => col.notNull().defaultTo(sql`'[]'::jsonb`))
          .addColumn('failures', 'jsonb', (col) => col.notNull().defaultTo(sql`'[]'::jsonb`))
          .addColumn('conflicts', 'jsonb', (col) => col.notNull().defaultTo(sql`'[]'::jsonb`))
          .addColumn('failed_step', 'text')
          .addColumn('error', 'text')
          .addColumn('started_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
          .addColumn('finished_at', 'timestamptz')
          .addUniqueConstraint('job_execution_run_iteration', ['run_id', 'iteration'])
          .execute();
        await db.schema.createIndex('job_execution_started_idx').on('job_execution').column('started_at desc').execute();
        await db.schema.createIndex('job_execution_workflow_idx').on('job_execution').column('workflow_id').execute();

        await db.schema
          .createTable('sync_state')
          .addColumn('integration_id', 'integer', (col) => col.notNull().references('integration.id').onDelete('cascade'))
          .addColumn('connector', 'text', (col) => col.notNull())
          .addColumn('entity_id', 'text', (col) => col.notNull())
          .addColumn('remote_id', 'text')
          .addColumn('snapshot_hash', 'text')
          .addColumn('snapshot', 'jsonb')
          .addColumn('remote_version', 'text')
          .addColumn('last_synced_at', 'timestamptz')
          .addColumn('last_error', 'text')
          // active: on the remote; deleted: deleted there after a local delete; tombstone: deleted
          // locally but the writer cannot delete remotely; remote_removed: gone from the remote and
          // not exported again until reset.
          .addColumn('status', 'text', (col) =>
            col
              .notNull()
              .defaultTo('active')
              .check(sql`status in ('active', 'deleted', 'tombstone', 'remote_removed')`),
          )
          .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
          .addPrimaryKeyConstraint('sync_state_pk', ['integration_id', 'connector', 'entity_id'])
          .execute();

        await db.schema
          .createTable('outbox')
          .addColumn('id', 'bigserial', (col) => col.primaryKey())
          .addColumn('integration', 'text', (col) => col.notNull())
          .addColumn('connector', 'text', (col) => col.notNull())
          // A JSON scalar, or an object of column -> value for composite ids.
          .addColumn('entity_id', 'jsonb', (col) => col.notNull())
          .addColumn('status', 'text', (col) =>
            col
              .notNull()
              .defaultTo('pending')
              .check(sql`status in ('pending', 'dispatched', 'skipped')`),
          )
          .addColumn('skip_reason', 'text')
          .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(0))
          .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`clock_timestamp()`))
          .addColumn('dispatched_at', 'timestamptz')
          .execute();
        // The relay only ever scans pending rows, oldest first.
        await sql`create index outbox_pending_idx on ${q('outbox')} (id) where status = 'pending'`.execute(root);

        await db.schema
          .createTable('conflict')
          .addColumn('id', 'bigserial', (col) => col.primaryKey())
          .addColumn('integration', 'text', (col) => col.notNull())
          .addColumn('connector', 'text', (col) => col.notNull())
          .addColumn('entity_id', 'text', (col) => col.notNull())
          .addColumn('field', 'text', (col) => col.notNull())
          .addColumn('base_value', 'jsonb')
          .addColumn('local_value', 'jsonb')
          .addColumn('remote_value', 'jsonb')
          .addColumn('winner', 'text', (col) => col.notNull().check(sql`winner in ('local', 'remote')`))
          .addColumn('rule', 'text', (col) => col.notNull().check(sql`rule in ('field_rule', 'priority')`))
          .addColumn('workflow_id', 'text')
          .addColumn('run_id', 'text')
          .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
          .execute();
        await db.schema.createIndex('conflict_entity_idx').on('conflict').columns(['integration', 'connector', 'entity_id']).execute();

        await createEnqueueFunctions(root, schema);
      },
    },
    '2026_11_26_002_outbox_retention': {
      async up(root: Kysely<unknown>): Promise<void> {
        // Housekeeping deletes old dispatched and skipped rows by age: find them without a scan.
        await sql`create index outbox_done_idx on ${q('outbox')} (dispatched_at) where status <> 'pending'`.execute(root);
      },
    },
    '2026_12_02_001_failure_lifecycle': failureLifecycle(schema),
    '2026_12_03_001_pending_create': pendingCreate(schema),
    '2026_12_10_001_bulk_exports': bulkExports(schema),
    '2026_12_14_001_rate_limits': rateLimits(schema),
    '2026_12_20_001_executions_by_entity': {
      async up(root: Kysely<unknown>): Promise<void> {
        // `tidesync status --entity` finds the passes that exported an entity among change streams' many.
        await sql`create index job_execution_entities_idx on ${q('job_execution')} using gin (entity_ids jsonb_path_ops)`.execute(root);
      },
    },
    '2026_12_21_001_sync_state_room': syncStateRoom(schema),
    '2026_12_22_001_sync_state_cascade': syncStateCascade(schema),
  };
}

/**
 * `<schema>.enqueue_export(integration, connector, id jsonb)` and `enqueue_exports(..., ids jsonb)`:
 * the outbox from any client in the application's transaction (plain SQL, any ORM, any language).
 * They check their input with errors that name the bad value, insert, and wake the relays
 * (NOTIFY is delivered only on commit, so a rollback exports nothing).
 */
async function createEnqueueFunctions(db: Kysely<unknown>, schema: string): Promise<void> {
  const fn = (name: string) => sql.id(schema, name);
  await sql`
    create function ${fn('is_entity_id')}(id jsonb) returns boolean language sql immutable as $fn$
      select case jsonb_typeof(id)
        when 'string' then id #>> '{}' <> ''
        when 'number' then true
        when 'object' then id <> '{}'::jsonb and not exists (
          select 1 from jsonb_each(id) e
          where jsonb_typeof(e.value) not in ('string', 'number') or e.value = '""'::jsonb)
        else false end
    $fn$`.execute(db);
  await sql`
    create function ${fn('enqueue_exports')}(integration text, connector text, ids jsonb) returns integer
    language plpgsql as $fn$
    declare
      bad jsonb;
      inserted integer;
    begin
      if integration is null or btrim(integration) = '' then
        raise exception 'integration % is not valid: expected a non-empty string', coalesce(quote_literal(integration), 'null')
          using errcode = '22023';
      end if;
      if connector is null or btrim(connector) = '' then
        raise exception 'connector % is not valid: expected a non-empty string', coalesce(quote_literal(connector), 'null')
          using errcode = '22023';
      end if;
      if ids is null or jsonb_typeof(ids) <> 'array' or jsonb_array_length(ids) = 0 then
        raise exception 'ids % is not valid: expected a non-empty JSON array', coalesce(ids::text, 'null') using errcode = '22023';
      end if;
      select value into bad from jsonb_array_elements(ids) where not ${fn('is_entity_id')}(value) limit 1;
      if found then
        raise exception 'entity id % is not valid: use a non-empty string, a number, or an object of column -> string or number', bad
          using errcode = '22023';
      end if;
      insert into ${fn('outbox')} (integration, connector, entity_id)
        select enqueue_exports.integration, enqueue_exports.connector, value from jsonb_array_elements(ids);
      get diagnostics inserted = row_count;
      perform pg_notify(${sql.lit(OUTBOX_CHANNEL)}, '');
      return inserted;
    end
    $fn$`.execute(db);
  await sql`
    create function ${fn('enqueue_export')}(integration text, connector text, id jsonb) returns integer
    language sql as $fn$ select ${fn('enqueue_exports')}(integration, connector, jsonb_build_array(id)) $fn$`.execute(db);
}

/** Serves the migrations of one schema to kysely's `Migrator`. */
export class CodeMigrationProvider implements MigrationProvider {
  readonly #migrations: Record<string, Migration>;

  constructor(schema: string = DEFAULT_SCHEMA) {
    this.#migrations = migrationsFor(schema);
  }

  /** Returns the migrations by name; kysely runs them in name order. */
  async getMigrations(): Promise<Record<string, Migration>> {
    return this.#migrations;
  }
}

/**
 * Creates tidesync's schema if needed and brings it up to date. Safe to call from several processes
 * at once: kysely takes a lock table so only one runs the migrations.
 */
export async function migrateToLatest(db: Kysely<unknown>, schema: string = DEFAULT_SCHEMA): Promise<string[]> {
  const migrator = new Migrator({
    db,
    provider: new CodeMigrationProvider(checkSchemaName(schema)),
    migrationTableSchema: schema,
    migrationTableName: 'migration',
    migrationLockTableName: 'migration_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(
      `database migration '${failed}' of schema '${schema}' failed: ${error instanceof Error ? error.message : String(error)}`,
      {
        cause: error,
      },
    );
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
