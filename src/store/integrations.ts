/** Reads and writes integration settings (`tidesync.integration`). */
import type { Kysely, Selectable } from 'kysely';
import type { Integration, SyncPriority } from '../connectors/connector';
import { ConfigurationError } from '../errors';
import type { IntegrationTable, TidesyncDatabase } from './schema';

function toIntegration(row: Selectable<IntegrationTable>): Integration {
  return {
    id: row.id,
    type: row.type,
    name: row.name,
    enabled: row.enabled,
    twoWaySync: row.two_way_sync,
    syncPriority: row.sync_priority,
    transport: row.transport,
    secretRef: row.secret_ref,
  };
}

/** The integration called `name`, or a `ConfigurationError` listing the configured ones. */
export async function getIntegration(db: Kysely<TidesyncDatabase>, name: string): Promise<Integration> {
  const row = await db.selectFrom('integration').selectAll().where('name', '=', name).executeTakeFirst();
  if (row) return toIntegration(row);
  const names = await db.selectFrom('integration').select('name').orderBy('name').execute();
  throw new ConfigurationError(`unknown integration '${name}' (configured: ${names.map((n) => n.name).join(', ') || 'none'})`);
}

/** Settings of an integration to create or update. */
export interface IntegrationSettings {
  readonly type: string;
  readonly name: string;
  readonly enabled?: boolean;
  readonly twoWaySync?: boolean;
  readonly syncPriority?: SyncPriority;
  readonly transport?: Record<string, unknown>;
  readonly secretRef?: string | null;
}

/** Creates the integration, or updates it when one with that name exists. */
export async function upsertIntegration(db: Kysely<TidesyncDatabase>, settings: IntegrationSettings): Promise<Integration> {
  const values = {
    type: settings.type,
    enabled: settings.enabled ?? true,
    two_way_sync: settings.twoWaySync ?? true,
    sync_priority: settings.syncPriority ?? 'local',
    transport: JSON.stringify(settings.transport ?? {}),
    secret_ref: settings.secretRef ?? null,
  };
  const row = await db
    .insertInto('integration')
    .values({ name: settings.name, ...values })
    .onConflict((oc) => oc.column('name').doUpdateSet({ ...values, updated_at: new Date() }))
    .returningAll()
    .executeTakeFirstOrThrow();
  return toIntegration(row);
}

/** Every configured integration, by name. */
export async function listIntegrations(db: Kysely<TidesyncDatabase>): Promise<Integration[]> {
  const rows = await db.selectFrom('integration').selectAll().orderBy('name').execute();
  return rows.map(toIntegration);
}
