/** Integrations shipped with tidesync. */
import type { ServiceRegistry } from '../jobs/service-registry';
import { registerDemoIntegration } from './demo';
import type { ConnectorRegistry } from './registry';

/** Registers every shipped integration's connectors and services. */
export function registerBuiltinIntegrations(connectors: ConnectorRegistry, services: ServiceRegistry): void {
  registerDemoIntegration(connectors, services);
}
