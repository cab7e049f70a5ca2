/** Writes contacts to the demo CRM: create the first time, full replace afterwards, delete when deleted locally. */
import { z } from 'zod';
import type { Change, RemoteRecord, WriteContext, WriteResult, Writer } from 'tidesync';
import { ConfigurationError, RemoteNotFoundError } from 'tidesync';
import { DemoCrmClient, type RemoteContact, type RemoteContactFields } from './remote/crm-client';

/** Transport settings of a demo integration (`tidesync.integration.transport`). */
const transportSchema = z.object({ baseUrl: z.url(), timeoutMs: z.number().int().positive().optional() });

/** Pushes contact changesets with the processor's fields and the change's idempotency key. */
export class DemoContactWriter implements Writer {
  /** The CRM takes PATCH with only the changed fields. */
  readonly supportsPartialUpdate = true;

  async write(change: Change, context: WriteContext): Promise<WriteResult> {
    const client = this.#client(context);
    const options = {
      idempotencyKey: change.idempotencyKey,
      signal: context.signal,
      ...(change.expectedVersion !== null ? { ifMatch: change.expectedVersion } : {}),
    };
    // POST /contacts, PATCH /contacts/:id or PUT /contacts/:id, with If-Match: see remote/crm-server.ts.
    let contact: RemoteContact;
    if (change.operation === 'create' || !change.remoteId) {
      contact = await client.create(change.data as unknown as RemoteContactFields, options);
    } else if (change.partial) {
      contact = await client.patch(change.remoteId, change.data as Partial<RemoteContactFields>, options);
    } else {
      contact = await client.replace(change.remoteId, change.data as unknown as RemoteContactFields, options);
    }
    return { remoteId: contact.id, remoteVersion: String(contact.version) };
  }

  /** GET /contacts/:id: the version and the fields we map, for conflict detection. */
  async read(remoteId: string, context: WriteContext): Promise<RemoteRecord | null> {
    const contact = await this.#client(context).get(remoteId, { signal: context.signal });
    if (!contact) return null;
    const { firstName, lastName, email, phone, company } = contact;
    return { version: String(contact.version), data: { firstName, lastName, email, phone, company } };
  }

  /** DELETE /contacts/:id; a contact that is already gone counts as deleted. */
  async delete(change: Change, context: WriteContext): Promise<void> {
    if (!change.remoteId) return;
    try {
      await this.#client(context).delete(change.remoteId, { idempotencyKey: change.idempotencyKey, signal: context.signal });
    } catch (err) {
      if (!(err instanceof RemoteNotFoundError)) throw err;
    }
  }

  #client(context: WriteContext): DemoCrmClient {
    const transport = transportSchema.safeParse(context.integration.transport);
    if (!transport.success) {
      const issue = transport.error.issues[0];
      throw new ConfigurationError(`integration '${context.integration.name}' transport.${issue?.path.join('.')}: ${issue?.message}`);
    }
    if (!context.secret) throw new ConfigurationError(`integration '${context.integration.name}' has no secret reference`);
    return new DemoCrmClient({
      baseUrl: transport.data.baseUrl,
      token: context.secret,
      ...(transport.data.timeoutMs ? { timeoutMs: transport.data.timeoutMs } : {}),
    });
  }
}
