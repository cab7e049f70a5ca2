/**
 * The demo CRM's `/contacts` routes: which route a path names, which methods it takes, and how a
 * single-contact request is applied to the store (the batch is applied by `crm-batch.ts`).
 *
 * Every route needs the bearer token; every write takes an `Idempotency-Key`, whose records all
 * routes and batch items share (a key reused for another method or path is a 422).
 * - `GET /contacts`: every contact. `POST /contacts` with the fields: create (201).
 * - `GET /contacts/:id`; `PUT` (replace every field), `PATCH` (the given ones), `DELETE` (204).
 *   Writes take `If-Match` (412 with `currentVersion` when the version moved on).
 * - `PUT /contacts/by-key/:externalKey` (the key URL-encoded), with the fields as for
 *   `POST /contacts`: upsert by the client's own id, as HubSpot's `idProperty` or a Salesforce
 *   External ID. Replaces every field of the contact carrying that key (200, version + 1) or
 *   creates a contact carrying it (201). No `If-Match` there (400 `if_match_unsupported`).
 * - `DELETE /contacts/by-key/:externalKey`: deletes the contact carrying it (204), else 404.
 * - `POST /contacts/batch`: up to 100 creates, replaces and upserts by key (see `crm-batch.ts`).
 * A contact answers as `{ id, version, firstName, lastName, email, phone, company }` with its
 * version as `ETag`, plus `externalKey` when it was created by key; the key never changes, and
 * the routes by id serve such a contact too. Faults (`/_control/faults`) match every route here
 * by method and path prefix.
 */
import { CrmApiError } from './crm-contact';
import { decodeId, parseJson, withEtag } from './crm-http';
import type { StoredResponse } from './crm-idempotency';
import type { CrmStore } from './crm-store';

const CONTACT_ROUTE = /^\/contacts\/([^/]+)$/;
const BY_KEY_ROUTE = /^\/contacts\/by-key\/([^/]+)$/;

/**
 * A `/contacts` route, resolved from a request's path. `path` is the one its idempotency records
 * are kept under: the request's own, except for a by-key route, whose key is re-encoded so that
 * `%2f` and `%2F`, or a batch item by the same key, share their records.
 */
export type ContactsRoute =
  | { readonly kind: 'collection'; readonly path: string }
  | { readonly kind: 'batch'; readonly path: string }
  | { readonly kind: 'contact'; readonly path: string; readonly id: string }
  | { readonly kind: 'byKey'; readonly path: string; readonly externalKey: string };

const ALLOWED_METHODS: Readonly<Record<ContactsRoute['kind'], readonly string[]>> = {
  collection: ['GET', 'POST'],
  batch: ['POST'],
  contact: ['GET', 'PUT', 'PATCH', 'DELETE'],
  byKey: ['PUT', 'DELETE'],
};

/** The path of the by-key route of `externalKey`, as idempotency records keep it. */
export function byKeyPath(externalKey: string): string {
  return `/contacts/by-key/${encodeURIComponent(externalKey)}`;
}

/** The route `method path` asks for; 400 for a malformed escape, 404 for no route, 405 for another method. */
export function resolveContactsRoute(method: string, path: string): ContactsRoute {
  const route = routeOf(path);
  if (!route) throw new CrmApiError(404, 'not_found', `no route for ${method} ${path}`);
  if (!ALLOWED_METHODS[route.kind].includes(method)) {
    throw new CrmApiError(405, 'method_not_allowed', `${method} is not allowed on ${path}`);
  }
  return route;
}

function routeOf(path: string): ContactsRoute | undefined {
  if (path === '/contacts') return { kind: 'collection', path };
  if (path === '/contacts/batch') return { kind: 'batch', path };
  const byKey = BY_KEY_ROUTE.exec(path)?.[1];
  if (byKey !== undefined) {
    const externalKey = decodeId(byKey, 'external key');
    return { kind: 'byKey', path: byKeyPath(externalKey), externalKey };
  }
  const id = CONTACT_ROUTE.exec(path)?.[1];
  return id === undefined ? undefined : { kind: 'contact', path, id: decodeId(id) };
}

/**
 * Applies one request to a single-contact route (any but the batch) synchronously, so nothing
 * interleaves with its idempotency check.
 */
export function applyContactsRequest(
  store: CrmStore,
  route: Exclude<ContactsRoute, { kind: 'batch' }>,
  method: string,
  text: string,
  ifMatch: string | undefined,
): StoredResponse {
  switch (route.kind) {
    case 'collection':
      if (method === 'GET') return { status: 200, body: store.list() };
      return withEtag(201, store.create(parseJson(text)));
    case 'byKey':
      return applyByKey(store, route.externalKey, method, text, ifMatch);
    case 'contact':
      return applyById(store, route.id, method, text, ifMatch);
  }
}

function applyById(store: CrmStore, id: string, method: string, text: string, ifMatch: string | undefined): StoredResponse {
  switch (method) {
    case 'PUT':
      return withEtag(200, store.replace(id, parseJson(text), ifMatch));
    case 'PATCH':
      return withEtag(200, store.patch(id, parseJson(text), ifMatch));
    case 'DELETE':
      store.delete(id, ifMatch);
      return { status: 204, body: null };
    default:
      return withEtag(200, store.get(id));
  }
}

/** `PUT` (upsert: 201 created, 200 replaced) or `DELETE` (204) of the contact carrying `externalKey`. */
function applyByKey(store: CrmStore, externalKey: string, method: string, text: string, ifMatch: string | undefined): StoredResponse {
  // Refused rather than ignored: a client that sends it believes its write is conditional.
  if (ifMatch !== undefined) {
    const message = `If-Match is not supported on ${method} /contacts/by-key/:externalKey; address the contact by id for a conditional write`;
    throw new CrmApiError(400, 'if_match_unsupported', message);
  }
  if (method === 'DELETE') {
    store.deleteByKey(externalKey);
    return { status: 204, body: null };
  }
  const { contact, created } = store.upsertByKey(externalKey, parseJson(text));
  return withEtag(created ? 201 : 200, contact);
}
