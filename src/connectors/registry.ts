/** Maps (integration type, connector name) to connectors, and so to export workflow types. */
import type { Connector } from './connector';
import { ConfigurationError } from '../errors';

/** Every connector tidesync can run, by integration type and name. */
export class ConnectorRegistry {
  readonly #connectors = new Map<string, Map<string, Connector>>();

  /** Registers a connector; the pair (integration type, name) must be new. */
  register(connector: Connector): this {
    let byName = this.#connectors.get(connector.integrationType);
    if (!byName) {
      byName = new Map();
      this.#connectors.set(connector.integrationType, byName);
    }
    if (byName.has(connector.name)) {
      throw new ConfigurationError(
        `connector '${connector.name}' of integration type '${connector.integrationType}' is already registered`,
      );
    }
    byName.set(connector.name, connector);
    return this;
  }

  /** The connector, or a `ConfigurationError` naming what is known instead. */
  get(integrationType: string, name: string): Connector;
  /** Checks that the integration type is known (`name` undefined). */
  get(integrationType: string, name: undefined): undefined;
  get(integrationType: string, name: string | undefined): Connector | undefined {
    const byName = this.#connectors.get(integrationType);
    if (!byName) {
      throw new ConfigurationError(
        `unknown integration type '${integrationType}' (known: ${[...this.#connectors.keys()].sort().join(', ') || 'none'})`,
      );
    }
    if (name === undefined) return undefined;
    const connector = byName.get(name);
    if (!connector) {
      throw new ConfigurationError(
        `unknown connector '${name}' for integration type '${integrationType}' (known: ${[...byName.keys()].sort().join(', ')})`,
      );
    }
    return connector;
  }

  /** The Temporal workflow type that exports this connector's entities: its export job's name. */
  exportWorkflowType(integrationType: string, name: string): string {
    return this.get(integrationType, name).getExportJobName();
  }

  /** All registered connectors. */
  list(): Connector[] {
    return [...this.#connectors.values()].flatMap((byName) => [...byName.values()]);
  }
}
