/**
 * The transactional outbox: the application records "export this entity" in its own transaction,
 * so a rolled-back change exports nothing and a committed one is always exported (by the relay).
 * Every route ends in the same SQL function, `<schema>.enqueue_exports`, installed by the
 * migrations: from kysely, from a `pg` client, or from plain SQL in any stack.
 */
import { type Kysely, sql } from 'kysely';
import type { EntityId } from '../entity-id';
import { ConfigurationError } from '../errors';
import { DEFAULT_SCHEMA, checkSchemaName } from '../store/db';

export { OUTBOX_CHANNEL } from './channel';

/**
 * Where the application's transaction runs: a kysely `Transaction` (or `Kysely`) on any database
 * type, or anything with node-postgres' `query(text, values)` (a `pg` `PoolClient` or `Client`
 * inside `BEGIN`, or the client of an ORM built on `pg`).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AppTransaction = Kysely<any> | PgQueryable;

/** The one method of a node-postgres client the outbox needs. */
export interface PgQueryable {
  query(text: string, values: unknown[]): Promise<unknown>;
}

/** Entities of one connector to export later. */
export interface OutboxBatch {
  readonly integration: string;
  readonly connector: string;
  readonly ids: readonly EntityId[];
}

/** One entity to export later. */
export interface OutboxRequest {
  readonly integration: string;
  readonly connector: string;
  readonly id: EntityId;
}

/** Options of the enqueue functions. */
export interface EnqueueOptions {
  /** The schema tidesync's tables live in; default `tidesync`. */
  readonly schema?: string;
}

function isEntityIdValue(value: unknown): boolean {
  return (typeof value === 'string' && value !== '') || (typeof value === 'number' && Number.isFinite(value));
}

function checkId(id: unknown): EntityId {
  if (isEntityIdValue(id)) return id as EntityId;
  if (id !== null && typeof id === 'object' && !Array.isArray(id)) {
    const values = Object.values(id);
    if (values.length > 0 && values.every(isEntityIdValue)) return id as EntityId;
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

function isKysely(trx: AppTransaction): trx is Kysely<unknown> {
  return typeof (trx as Kysely<unknown>).selectFrom === 'function';
}

/**
 * Records exports inside the caller's transaction. Nothing is sent until the transaction commits;
 * then relays are woken by NOTIFY.
 */
export async function enqueueExports(trx: AppTransaction, request: OutboxBatch, options: EnqueueOptions = {}): Promise<void> {
  const integration = checkName('integration', request.integration);
  const connector = checkName('connector', request.connector);
  if (!Array.isArray(request.ids) || request.ids.length === 0) {
    throw new ConfigurationError(`ids ${JSON.stringify(request.ids)} is not valid: expected a non-empty array`);
  }
  const ids = JSON.stringify(request.ids.map(checkId));
  const schema = checkSchemaName(options.schema ?? DEFAULT_SCHEMA);
  if (isKysely(trx)) {
    await sql`select ${sql.id(schema, 'enqueue_exports')}(${integration}, ${connector}, ${ids}::jsonb)`.execute(trx);
  } else if (trx && typeof trx.query === 'function') {
    await trx.query(`select "${schema}".enqueue_exports($1, $2, $3::jsonb)`, [integration, connector, ids]);
  } else {
    throw new ConfigurationError('enqueueExport needs a kysely transaction or a pg client (something with query(text, values))');
  }
}

/** Records one export inside the caller's transaction; see `enqueueExports`. */
export async function enqueueExport(trx: AppTransaction, request: OutboxRequest, options: EnqueueOptions = {}): Promise<void> {
  await enqueueExports(trx, { integration: request.integration, connector: request.connector, ids: [request.id] }, options);
}
