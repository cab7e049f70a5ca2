/**
 * The transactional outbox: the application records "export this entity" in its own transaction,
 * so a rolled-back change exports nothing and a committed one is always exported (by the relay).
 */
import { type Kysely, sql } from 'kysely';
import { ConfigurationError } from '../connectors/errors';
import type { TidesyncDatabase } from '../db/schema';
import type { EntityId } from '../entity-id';

/** The NOTIFY channel that wakes relays; PostgreSQL delivers it only when the transaction commits. */
export const OUTBOX_CHANNEL = 'tidesync_outbox';

/** The application's own Kysely or transaction, whatever its database type. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AppTransaction = Kysely<any>;

/** One entity to export later. */
export interface OutboxRequest {
  readonly integration: string;
  readonly connector: string;
  readonly id: EntityId;
  /** What happened locally; informational (the export reads the entity and sees a delete itself). */
  readonly operation?: 'upsert' | 'delete';
}

function checkId(id: unknown): EntityId {
  if ((typeof id === 'string' && id !== '') || (typeof id === 'number' && Number.isFinite(id))) return id;
  if (id !== null && typeof id === 'object' && !Array.isArray(id)) {
    const entries = Object.entries(id);
    if (entries.length > 0 && entries.every(([, v]) => (typeof v === 'string' && v !== '') || (typeof v === 'number' && Number.isFinite(v)))) {
      return id as EntityId;
    }
  }
  throw new ConfigurationError(
    `entity id ${JSON.stringify(id)} is not valid: use a non-empty string, a number, or an object of column -> string or number`,
  );
}

function checkName(what: string, value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new ConfigurationError(`${what} ${JSON.stringify(value)} is not valid: expected a non-empty string`);
  }
  return value;
}

/**
 * Records exports inside the caller's transaction (pass the kysely `Transaction`). Nothing is
 * sent until the transaction commits; then relays are woken by NOTIFY.
 */
export async function enqueueExports(
  trx: AppTransaction,
  request: { integration: string; connector: string; ids: readonly EntityId[]; operation?: 'upsert' | 'delete' },
): Promise<void> {
  const integration = checkName('integration', request.integration);
  const connector = checkName('connector', request.connector);
  if (!Array.isArray(request.ids) || request.ids.length === 0) {
    throw new ConfigurationError(`ids ${JSON.stringify(request.ids)} is not valid: expected a non-empty array`);
  }
  const rows = request.ids.map((id) => ({
    integration,
    connector,
    entity_id: JSON.stringify(checkId(id)),
    operation: request.operation ?? ('upsert' as const),
  }));
  const db = trx as Kysely<TidesyncDatabase>;
  await db.insertInto('tidesync_outbox').values(rows).execute();
  await sql`select pg_notify(${OUTBOX_CHANNEL}, '')`.execute(db);
}

/** Records one export inside the caller's transaction; see `enqueueExports`. */
export async function enqueueExport(trx: AppTransaction, request: OutboxRequest): Promise<void> {
  await enqueueExports(trx, {
    integration: request.integration,
    connector: request.connector,
    ids: [request.id],
    ...(request.operation ? { operation: request.operation } : {}),
  });
}
