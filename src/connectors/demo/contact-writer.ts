/** Writes contacts to the demo CRM: create the first time, full replace afterwards, delete when deleted locally. */
import { z } from 'zod';
import type { Change, WriteContext, WriteResult, Writer } from '../connector';
import { ConfigurationError, RemoteNotFoundError } from '../errors';
import { DemoCrmClient, type RemoteContactFields } from './remote/crm-client';

/** Transport settings of a demo integration (`tidesync_integration.transport`). */
const transportSchema = z.object({ baseUrl: z.url(), timeoutMs: z.number().int().positive().optional() });

/** Pushes contact changesets with the processor's fields and the change's idempotency key. */
export class DemoContactWriter implements Writer {
  async write(change: Change, context: WriteContext): Promise<WriteResult> {
    const client = this.#client(context);
    const fields = change.data as unknown as RemoteContactFields;
    const options = { idempotencyKey: change.idempotencyKey, signal: context.signal };
    // POST /contacts (create) or PUT /contacts/:id (replace): see remote/crm-server.ts.
    const contact =
      change.operation === 'create' || !change.remoteId
        ? await client.create(fields, options)
        : await client.replace(change.remoteId, fields, options);
    return { remoteId: contact.id, remoteVersion: String(contact.version) };
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
      throw new ConfigurationError(
        `integration '${context.integration.name}' transport.${issue?.path.join('.')}: ${issue?.message}`,
      );
    }
    if (!context.secret) throw new ConfigurationError(`integration '${context.integration.name}' has no secret reference`);
    return new DemoCrmClient({
      baseUrl: transport.data.baseUrl,
      token: context.secret,
      ...(transport.data.timeoutMs ? { timeoutMs: transport.data.timeoutMs } : {}),
    });
  }
}
