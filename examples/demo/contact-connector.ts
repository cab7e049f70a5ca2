/** The demo integration's contact connector: exports local `contacts` rows to the demo CRM. */
import type { Connector } from 'tidesync';

/** The integration type of the demo CRM. */
export const DEMO_INTEGRATION_TYPE = 'demo';

/** Exports contacts with the `demo_contact_export` job. */
export class DemoContactConnector implements Connector {
  readonly integrationType = DEMO_INTEGRATION_TYPE;
  readonly name = 'contact';

  /** The job declared in `jobs/definitions/demo.yaml`. */
  getExportJobName(): string {
    return 'demo_contact_export';
  }
}
