/**
 * tidesync's schema migrations, run at start by kysely's `Migrator`. Migrations are code (not
 * files found at run time) so they ship inside the compiled package and the workflow bundle never
 * sees them. Never edit a released migration: add a new one.
 */
import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';

const migrations: Record<string, Migration> = {
  '2026_11_25_001_core': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('tidesync_integration')
        .addColumn('id', 'serial', (col) => col.primaryKey())
        .addColumn('type', 'text', (col) => col.notNull())
        .addColumn('name', 'text', (col) => col.notNull().unique())
        .addColumn('enabled', 'boolean', (col) => col.notNull().defaultTo(true))
        .addColumn('two_way_sync', 'boolean', (col) => col.notNull().defaultTo(true))
        .addColumn('sync_priority', 'text', (col) =>
          col.notNull().defaultTo('local').check(sql`sync_priority in ('local', 'remote')`),
        )
        .addColumn('transport', 'jsonb', (col) => col.notNull().defaultTo(sql`'{}'::jsonb`))
        .addColumn('secret_ref', 'text')
        .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
        .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
        .execute();

      await db.schema
        .createTable('tidesync_job_execution')
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
        .addUniqueConstraint('tidesync_job_execution_run_iteration', ['run_id', 'iteration'])
        .execute();
      await db.schema
        .createIndex('tidesync_job_execution_started_idx')
        .on('tidesync_job_execution')
        .column('started_at desc')
        .execute();
      await db.schema
        .createIndex('tidesync_job_execution_workflow_idx')
        .on('tidesync_job_execution')
        .column('workflow_id')
        .execute();

      await db.schema
        .createTable('tidesync_sync_state')
        .addColumn('integration_id', 'integer', (col) =>
          col.notNull().references('tidesync_integration.id').onDelete('cascade'),
        )
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
          col.notNull().defaultTo('active').check(sql`status in ('active', 'deleted', 'tombstone', 'remote_removed')`),
        )
        .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
        .addPrimaryKeyConstraint('tidesync_sync_state_pk', ['integration_id', 'connector', 'entity_id'])
        .execute();
    },
  },

  '2026_11_25_002_outbox': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('tidesync_outbox')
        .addColumn('id', 'bigserial', (col) => col.primaryKey())
        .addColumn('integration', 'text', (col) => col.notNull())
        .addColumn('connector', 'text', (col) => col.notNull())
        // A JSON scalar, or an object of column -> value for composite ids.
        .addColumn('entity_id', 'jsonb', (col) => col.notNull())
        .addColumn('operation', 'text', (col) =>
          col.notNull().defaultTo('upsert').check(sql`operation in ('upsert', 'delete')`),
        )
        .addColumn('status', 'text', (col) =>
          col.notNull().defaultTo('pending').check(sql`status in ('pending', 'dispatched', 'skipped')`),
        )
        .addColumn('skip_reason', 'text')
        .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(0))
        .addColumn('last_error', 'text')
        .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`clock_timestamp()`))
        .addColumn('dispatched_at', 'timestamptz')
        .execute();
      // The relay only ever scans pending rows, oldest first.
      await sql`create index tidesync_outbox_pending_idx on tidesync_outbox (id) where status = 'pending'`.execute(db);
    },
  },

  '2026_11_25_003_conflicts': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('tidesync_conflict')
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
      await db.schema
        .createIndex('tidesync_conflict_entity_idx')
        .on('tidesync_conflict')
        .columns(['integration', 'connector', 'entity_id'])
        .execute();
    },
  },
};

/** Serves the migrations above to kysely's `Migrator`. */
export class CodeMigrationProvider implements MigrationProvider {
  readonly #migrations: Record<string, Migration>;

  constructor(all: Record<string, Migration> = migrations) {
    this.#migrations = all;
  }

  /** Returns the migrations by name; kysely runs them in name order. */
  async getMigrations(): Promise<Record<string, Migration>> {
    return this.#migrations;
  }
}

/**
 * Brings the schema up to date. Safe to call from several processes at once: kysely takes a
 * lock table so only one runs the migrations.
 */
export async function migrateToLatest(db: Kysely<unknown>): Promise<string[]> {
  const migrator = new Migrator({
    db,
    provider: new CodeMigrationProvider(),
    migrationTableName: 'tidesync_migration',
    migrationLockTableName: 'tidesync_migration_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`database migration '${failed}' failed: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
