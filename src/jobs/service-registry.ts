/**
 * Binds the reader, processor and writer names used in job definitions to implementations: the
 * equivalent of Oro's `services.yaml`.
 */
import type { Processor, Reader, Writer } from '../connectors/connector';
import { ConfigurationError } from '../errors';

/** The three roles a service can play in a step. */
export type ServiceRole = 'reader' | 'processor' | 'writer';

interface ServiceByRole {
  reader: Reader;
  processor: Processor;
  writer: Writer;
}

/** Named readers, processors and writers. */
export class ServiceRegistry {
  readonly #services: { [R in ServiceRole]: Map<string, ServiceByRole[R]> } = {
    reader: new Map(),
    processor: new Map(),
    writer: new Map(),
  };

  /** Registers `service` under `name` for `role`; a name is bound once per role. */
  register<R extends ServiceRole>(role: R, name: string, service: ServiceByRole[R]): this {
    const services = this.#services[role] as Map<string, ServiceByRole[R]>;
    if (services.has(name)) throw new ConfigurationError(`${role} '${name}' is already registered`);
    services.set(name, service);
    return this;
  }

  /** True when `name` is registered for `role`. */
  has(role: ServiceRole, name: string): boolean {
    return this.#services[role].has(name);
  }

  /** The service bound to `name`; throws a `ConfigurationError` listing the known names if none is. */
  get<R extends ServiceRole>(role: R, name: string): ServiceByRole[R] {
    const service = (this.#services[role] as Map<string, ServiceByRole[R]>).get(name);
    if (!service) {
      throw new ConfigurationError(`unknown ${role} '${name}' (known: ${this.names(role).join(', ') || 'none'})`);
    }
    return service;
  }

  /** Registered names for `role`, sorted. */
  names(role: ServiceRole): string[] {
    return [...this.#services[role].keys()].sort();
  }
}
