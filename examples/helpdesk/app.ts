/**
 * The application's own code: it changes its tickets and, in the same transaction, asks tidesync
 * to export them. A rolled-back change exports nothing; a committed one is always exported (the
 * worker's outbox relay picks it up), even if the help desk is down at the time.
 */
import type { Generated, Kysely } from 'kysely';
import type { Pool } from 'pg';
import { enqueueExport } from 'tidesync';
import { TICKET_CONNECTOR } from './ticket-connector';

/** The `tickets` table (see schema.sql). */
export interface TicketTable {
  id: Generated<number>;
  subject: string;
  status: Generated<'draft' | 'open' | 'pending' | 'closed'>;
  priority: number | null;
  requester_email: string | null;
  helpdesk_id: string | null;
  updated_at: Generated<Date>;
}

/** The application's tables, for kysely. */
export interface HelpdeskDatabase {
  tickets: TicketTable;
}

/** Opens a ticket and queues its export to the integration named `integration`; returns its id. */
export async function openTicket(
  db: Kysely<HelpdeskDatabase>,
  integration: string,
  ticket: { subject: string; priority?: number; requesterEmail?: string },
): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const { id } = await trx
      .insertInto('tickets')
      .values({ subject: ticket.subject, priority: ticket.priority ?? null, requester_email: ticket.requesterEmail ?? null })
      .returning('id')
      .executeTakeFirstOrThrow();
    await enqueueExport(trx, { integration, connector: TICKET_CONNECTOR, id });
    return id;
  });
}

/** Closes a ticket and queues its export in the same transaction. */
export async function closeTicket(db: Kysely<HelpdeskDatabase>, integration: string, id: number): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const closed = await trx
      .updateTable('tickets')
      .set({ status: 'closed', updated_at: new Date() })
      .where('id', '=', id)
      .executeTakeFirst();
    if (closed.numUpdatedRows === 0n) throw new Error(`no ticket ${id} to close`);
    await enqueueExport(trx, { integration, connector: TICKET_CONNECTOR, id });
  });
}

/** `closeTicket` for code on plain `pg`: the export is queued inside the client's BEGIN ... COMMIT. */
export async function closeTicketWithPg(pool: Pool, integration: string, id: number): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    const closed = await client.query(`update tickets set status = 'closed', updated_at = now() where id = $1`, [id]);
    if (closed.rowCount === 0) throw new Error(`no ticket ${id} to close`);
    await enqueueExport(client, { integration, connector: TICKET_CONNECTOR, id });
    await client.query('commit');
  } catch (err) {
    await client.query('rollback');
    throw err;
  } finally {
    client.release();
  }
}
