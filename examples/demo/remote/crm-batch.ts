/**
 * `POST /contacts/batch` of the demo CRM: creates, replaces and upserts by external key up to
 * `MAX_BATCH_ITEMS` contacts in one request and answers each item on its own, as HubSpot's batch
 * upsert and Salesforce's composite API do: one bad item fails that item only.
 *
 * Request: `{ items: [{ key, id?, externalKey?, fields, ifMatch?, partial?, idempotencyKey? }] }`.
 * - `key`: the caller's name for the item, echoed in its result; unique within the request.
 * - neither `id` nor `externalKey`: create (201); with `id`: replace every field (200), or only
 *   the given ones with `partial: true`; `ifMatch` makes it conditional like the `If-Match`
 *   header (412).
 * - `externalKey` (not with `id`, `ifMatch` or `partial`): upsert like
 *   `PUT /contacts/by-key/:externalKey`: replace every field of the contact carrying that key
 *   (200), or create one carrying it (201).
 * - `idempotencyKey`: the item's own key, shared with the single-contact routes: an item whose key
 *   was used before (by an item or by the route the item stands for: `POST /contacts`,
 *   `PUT`/`PATCH /contacts/:id`, `PUT /contacts/by-key/:externalKey`) is answered from that first
 *   response instead of being applied again.
 *
 * Answer: 200 `{ results: [{ key, status, contact? , error? }] }` in input order, status 201 or
 * 200 with the contact, else 404 (no such contact), 409 (the contact, by id or by external key,
 * is already changed by an earlier item of the request), 412 (version conflict, with
 * `currentVersion`) or 422 (invalid fields) with the error. A body that is not such a request, or
 * holds more than `MAX_BATCH_ITEMS` items, is a 400 for all.
 */
import { z } from 'zod';
import { CrmApiError, type CrmContact, type CrmErrorBody } from './crm-contact';
import type { FaultQueue } from './crm-faults';
import { withEtag } from './crm-http';
import type { StoredResponse } from './crm-idempotency';
import { byKeyPath } from './crm-routes';
import type { CrmStore } from './crm-store';

/** The most items one batch request takes; HubSpot's batch endpoints take 100 as well. */
export const MAX_BATCH_ITEMS = 100;

const itemSchema = z
  .strictObject({
    key: z.string().min(1),
    id: z.string().min(1).optional(),
    externalKey: z.string().min(1).optional(),
    fields: z.record(z.string(), z.unknown()),
    ifMatch: z.union([z.string().min(1), z.number().int().positive()]).optional(),
    partial: z.boolean().optional(),
    idempotencyKey: z.string().min(1).optional(),
  })
  .superRefine((item, context) => {
    if (item.externalKey !== undefined && item.id !== undefined) {
      const message = 'externalKey and id exclude each other: an item names its contact by one or the other';
      context.addIssue({ code: 'custom', message, path: ['externalKey'] });
    } else if (item.externalKey !== undefined && (item.ifMatch !== undefined || item.partial !== undefined)) {
      // Like a create: an upsert may find no contact, so it has no version to match and nothing to keep.
      const field = item.ifMatch !== undefined ? 'ifMatch' : 'partial';
      const message = `${field} cannot go with externalKey: an upsert by key may create the contact, and replaces every field`;
      context.addIssue({ code: 'custom', message, path: [field] });
    } else if (item.id === undefined && (item.ifMatch !== undefined || item.partial !== undefined)) {
      const message = 'ifMatch and partial need an id: a create has no version to match and nothing to keep';
      context.addIssue({ code: 'custom', message, path: ['id'] });
    }
  });

const batchSchema = z.strictObject({ items: z.array(z.unknown()).min(1) });

/** One item of a batch request, validated. */
export type BatchItem = z.infer<typeof itemSchema>;

/** The answer to one item. */
export interface BatchItemResponse {
  key: string;
  status: number;
  contact?: CrmContact;
  error?: CrmErrorBody['error'];
}

/** Validates a batch request body; throws a 400 naming the bad item and field. */
export function parseBatch(body: unknown): BatchItem[] {
  const envelope = batchSchema.safeParse(body);
  if (!envelope.success) throw invalidBatch(envelope.error, []);
  const { items } = envelope.data;
  if (items.length > MAX_BATCH_ITEMS) {
    throw new CrmApiError(400, 'too_many_items', `batch has ${items.length} items; the limit is ${MAX_BATCH_ITEMS}`, { field: 'items' });
  }
  const firstIndexOfKey = new Map<string, number>();
  return items.map((raw, index) => {
    const item = itemSchema.safeParse(raw);
    if (!item.success) throw invalidBatch(item.error, ['items', index]);
    const first = firstIndexOfKey.get(item.data.key);
    if (first !== undefined) {
      const message = `items[${index}].key "${item.data.key}" repeats items[${first}].key; keys must be unique in a batch`;
      throw new CrmApiError(400, 'duplicate_key', message, { field: `items[${index}].key` });
    }
    firstIndexOfKey.set(item.data.key, index);
    return item.data;
  });
}

/** Applies the items in order and answers each; call inside `store.atomic` so they journal as one. */
export function applyBatch(store: CrmStore, faults: FaultQueue, items: readonly BatchItem[]): BatchItemResponse[] {
  const firstIndexOfId = new Map<string, number>();
  const firstIndexOfExternalKey = new Map<string, number>();
  return items.map((item, index) => {
    try {
      if (item.externalKey !== undefined) {
        const first = firstIndexOfExternalKey.get(item.externalKey);
        if (first !== undefined) {
          const message = `external key "${item.externalKey}" of items[${index}] is already upserted by items[${first}]`;
          throw new CrmApiError(409, 'duplicate_external_key', message);
        }
        firstIndexOfExternalKey.set(item.externalKey, index);
      }
      // An item by key changes the contact that carries the key now, which an item by id may name too.
      const id = item.id ?? (item.externalKey === undefined ? undefined : store.findByKey(item.externalKey)?.id);
      if (id !== undefined) {
        const first = firstIndexOfId.get(id);
        if (first !== undefined) {
          throw new CrmApiError(409, 'duplicate_id', `contact ${id} of items[${index}] is already changed by items[${first}]`);
        }
        firstIndexOfId.set(id, index);
      }
      return applyItem(store, faults, item);
    } catch (error) {
      if (!(error instanceof CrmApiError)) throw error;
      return { key: item.key, status: error.status, error: error.toBody().error };
    }
  });
}

function applyItem(store: CrmStore, faults: FaultQueue, item: BatchItem): BatchItemResponse {
  // The route the item stands for, so its idempotency key means the same as on that route.
  const { method, path } = routeOf(item);
  if (item.idempotencyKey !== undefined) {
    const replay = store.findReplay(item.idempotencyKey, method, path);
    if (replay) return fromStored(item.key, replay);
  }
  const fault = faults.takeItem(item.key, item.fields['email']);
  if (fault) {
    store.countFault(fault.kind);
    throw new CrmApiError(422, 'validation_failed', fault.message);
  }
  const { contact, status } = applyChange(store, item);
  // Only applied items are remembered: a rejected item retried after a fix must run again.
  if (item.idempotencyKey !== undefined) store.remember(item.idempotencyKey, method, path, withEtag(status, contact));
  return { key: item.key, status, contact };
}

function routeOf(item: BatchItem): { method: string; path: string } {
  if (item.externalKey !== undefined) return { method: 'PUT', path: byKeyPath(item.externalKey) };
  if (item.id === undefined) return { method: 'POST', path: '/contacts' };
  return { method: item.partial ? 'PATCH' : 'PUT', path: `/contacts/${encodeURIComponent(item.id)}` };
}

function applyChange(store: CrmStore, item: BatchItem): { contact: CrmContact; status: 200 | 201 } {
  if (item.externalKey !== undefined) {
    const { contact, created } = store.upsertByKey(item.externalKey, item.fields);
    return { contact, status: created ? 201 : 200 };
  }
  if (item.id === undefined) return { contact: store.create(item.fields), status: 201 };
  const ifMatch = item.ifMatch === undefined ? undefined : String(item.ifMatch);
  if (item.partial) return { contact: store.patch(item.id, item.fields, ifMatch), status: 200 };
  return { contact: store.replace(item.id, item.fields, ifMatch), status: 200 };
}

function fromStored(key: string, stored: StoredResponse): BatchItemResponse {
  return { key, status: stored.status, contact: stored.body as CrmContact };
}

function invalidBatch(error: z.ZodError, prefix: ReadonlyArray<string | number>): CrmApiError {
  const issue = error.issues[0];
  const path = [...prefix, ...(issue?.path ?? [])];
  const field = path.map((part, index) => (typeof part === 'number' ? `[${part}]` : `${index === 0 ? '' : '.'}${String(part)}`)).join('');
  const where = field === '' ? '(body)' : field;
  return new CrmApiError(400, 'invalid_batch', `invalid batch ${where}: ${issue?.message ?? 'unknown problem'}`, { field: where });
}
