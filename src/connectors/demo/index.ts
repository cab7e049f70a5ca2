/** The demo integration: a contact connector, its processor and writer. */
import type { ServiceRegistry } from '../../jobs/service-registry';
import type { ConnectorRegistry } from '../registry';
import { DemoContactConnector } from './contact-connector';
import { DemoContactProcessor } from './contact-processor';
import { DemoContactWriter } from './contact-writer';

export { DEMO_INTEGRATION_TYPE } from './contact-connector';

/** Registers the demo connector and the services its job names. */
export function registerDemoIntegration(connectors: ConnectorRegistry, services: ServiceRegistry): void {
  connectors.register(new DemoContactConnector());
  services.register('processor', 'demo.contact_processor', new DemoContactProcessor());
  services.register('writer', 'demo.contact_writer', new DemoContactWriter());
}
