/** Maps a local `tickets` row to the help desk's ticket fields. */
import type { Entity, ProcessResult, Processor } from 'tidesync';

/** The help desk names priorities; the application numbers them 1 to 4. */
const PRIORITY_LABELS: Readonly<Record<number, string>> = { 1: 'low', 2: 'normal', 3: 'high', 4: 'urgent' };

/** The fields the help desk takes on `POST /tickets` and `PUT /tickets/:id`. */
export interface RemoteTicketFields {
  readonly subject: string;
  readonly status: string;
  readonly priority: string;
  readonly requester: string | null;
  /** Our id, so an agent on the help desk can find the ticket in the application. */
  readonly externalRef: string;
}

/** Local snake_case columns to the help desk's fields; drafts are skipped. */
export class TicketProcessor implements Processor {
  process(entity: Entity): ProcessResult {
    if (entity['status'] === 'draft') return { kind: 'skip', reason: 'draft tickets stay in the application' };
    const priority = entity['priority'] === null ? 2 : Number(entity['priority']);
    const label = PRIORITY_LABELS[priority];
    if (label === undefined) throw new Error(`ticket ${String(entity['id'])}: priority ${String(entity['priority'])} is not 1 to 4`);
    const fields: RemoteTicketFields = {
      subject: String(entity['subject']),
      status: String(entity['status']),
      priority: label,
      requester: typeof entity['requester_email'] === 'string' ? entity['requester_email'] : null,
      externalRef: `ticket-${String(entity['id'])}`,
    };
    return { kind: 'changeset', data: { ...fields } };
  }
}
