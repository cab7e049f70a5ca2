/** The help desk's ticket connector: exports the application's `tickets` rows. */
import type { Connector } from 'tidesync';

/** The integration type to give `tidesync integration set --type`. */
export const HELPDESK_INTEGRATION_TYPE = 'helpdesk';

/** The connector's name, which the application passes to `enqueueExport`. */
export const TICKET_CONNECTOR = 'ticket';

/** Exports tickets with the `helpdesk_ticket_export` job. */
export class TicketConnector implements Connector {
  readonly integrationType = HELPDESK_INTEGRATION_TYPE;
  readonly name = TICKET_CONNECTOR;

  /** The job declared in `jobs/helpdesk.yaml`. */
  getExportJobName(): string {
    return 'helpdesk_ticket_export';
  }
}
