/** Writes contacts to the demo CRM: create the first time, full replace afterwards, delete when deleted locally. */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { BatchItemResult, Change, Integration, RemoteRecord, WriteContext, WriteResult, Writer } from 'tidesync';
import { ConfigurationError, RemoteNotFoundError } from 'tidesync';
import { BATCH_UPSERT_LIMIT, type BatchUpsertItem, DemoCrmClient, type RemoteContact, type RemoteContactFields } from './remote/crm-client';

/**
 * Transport settings of a demo integration (`tidesync.integration.transport`). `upsertByKey`:
 * create contacts keyed by the local id (the CRM's external key), see `upsertsByKey`.
 */
const transportSchema = z.object({
  baseUrl: z.url(),
  timeoutMs: z.number().int().positive().optional(),
  upsertByKey: z.boolean().optional(),
});

/** Pushes contact changesets with the processor's fields and the change's idempotency key. */
export class DemoContactWriter implements Writer {
  /** The CRM takes PATCH with only the changed fields. */
  readonly supportsPartialUpdate = true;
  /** `POST /contacts/batch` takes at most this many items. */
  readonly maxBatchSize = BATCH_UPSERT_LIMIT;

  /**
   * With `transport.upsertByKey`, creates go to the contact whose external key is the entity's key
   * (`PUT /contacts/by-key/:key`, batch items with `externalKey`), so a create sent again finds
   * the contact an earlier one made, and a delete without a remote id deletes by that key.
   */
  upsertsByKey(integration: Integration): boolean {
    return integration.transport['upsertByKey'] === true;
  }

  async write(change: Change, context: WriteContext): Promise<WriteResult> {
    const client = this.#client(context);
    const options = {
      idempotencyKey: change.idempotencyKey,
      signal: context.signal,
      ...(change.expectedVersion !== null ? { ifMatch: change.expectedVersion } : {}),
    };
    // POST /contacts (or PUT /contacts/by-key/:key), PATCH /contacts/:id or PUT /contacts/:id, with If-Match: see remote/crm-routes.ts.
    let contact: RemoteContact;
    if (change.operation === 'create' || !change.remoteId) {
      const fields = change.data as unknown as RemoteContactFields;
      // PUT /contacts/by-key/:key takes no If-Match: a create has no version to match.
      contact = this.upsertsByKey(context.integration)
        ? await client.upsertByKey(change.key, fields, { idempotencyKey: change.idempotencyKey, signal: context.signal })
        : await client.create(fields, options);
    } else if (change.partial) {
      contact = await client.patch(change.remoteId, change.data as Partial<RemoteContactFields>, options);
    } else {
      contact = await client.replace(change.remoteId, change.data as unknown as RemoteContactFields, options);
    }
    return { remoteId: contact.id, remoteVersion: String(contact.version) };
  }

  /**
   * POST /contacts/batch, `maxBatchSize` changes a request: each item carries its change's
   * idempotency key, and the request a key derived from them, so a retried batch is replayed.
   */
  async writeBatch(changes: readonly Change[], context: WriteContext): Promise<BatchItemResult[]> {
    const client = this.#client(context);
    // Every change is checked before the first request, so a bad one sends nothing.
    const byKey = this.upsertsByKey(context.integration);
    const items = changes.map((change) => batchItem(change, byKey));
    const results: BatchItemResult[] = [];
    for (let start = 0; start < changes.length; start += this.maxBatchSize) {
      const chunk = items.slice(start, start + this.maxBatchSize);
      const idempotencyKey = batchKey(changes.slice(start, start + this.maxBatchSize));
      const answers = await client.batchUpsert(chunk, { idempotencyKey, signal: context.signal });
      for (const answer of answers) {
        results.push(
          answer.ok
            ? { key: answer.key, ok: true, remoteId: answer.contact.id, remoteVersion: String(answer.contact.version) }
            : { key: answer.key, ok: false, error: answer.error },
        );
      }
    }
    return results;
  }

  /** GET /contacts/:id: the version and the fields we map, for conflict detection. */
  async read(remoteId: string, context: WriteContext): Promise<RemoteRecord | null> {
    const contact = await this.#client(context).get(remoteId, { signal: context.signal });
    if (!contact) return null;
    const { firstName, lastName, email, phone, company } = contact;
    return { version: String(contact.version), data: { firstName, lastName, email, phone, company } };
  }

  /**
   * DELETE /contacts/:id, or DELETE /contacts/by-key/:key without a remote id (creates by key); a
   * contact that is already gone (or was never made) counts as deleted.
   */
  async delete(change: Change, context: WriteContext): Promise<void> {
    const byKey = !change.remoteId && this.upsertsByKey(context.integration);
    if (!change.remoteId && !byKey) return;
    const options = { idempotencyKey: change.idempotencyKey, signal: context.signal };
    try {
      const client = this.#client(context);
      await (change.remoteId ? client.delete(change.remoteId, options) : client.deleteByKey(change.key, options));
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

/**
 * A change as an item of a batch upsert: a create without a remote id (by the entity's key with
 * `byKey`), else a replace or patch.
 */
function batchItem(change: Change, byKey: boolean): BatchUpsertItem {
  if (change.operation === 'delete') {
    throw new Error(`writeBatch takes creates and updates; change ${change.key} is a delete (use delete())`);
  }
  const item: BatchUpsertItem = {
    key: change.key,
    fields: change.data as Partial<RemoteContactFields>,
    idempotencyKey: change.idempotencyKey,
  };
  if (change.operation === 'create' || !change.remoteId) return byKey ? { ...item, externalKey: change.key } : item;
  return {
    ...item,
    id: change.remoteId,
    ...(change.partial ? { partial: true } : {}),
    ...(change.expectedVersion !== null ? { ifMatch: change.expectedVersion } : {}),
  };
}

/** The same for every retry of the same changes in the same order, and for no other batch. */
function batchKey(changes: readonly Change[]): string {
  const hash = createHash('sha256');
  for (const change of changes) hash.update(`${change.idempotencyKey}\n`);
  return `batch-${hash.digest('hex')}`;
}
