/**
 * The demo CRM's contacts by id, with a unique index on the external key. Every change goes
 * through `set`, `delete` and `clear`, so the index cannot drift from the contacts, whether a
 * change comes from a request, a snapshot or a replayed journal line; a lookup by key is one Map
 * read, whatever the number of contacts.
 */
import type { CrmContact } from './crm-contact';

/** The contacts of one store, in order of creation, indexed by id and by external key. */
export class ContactTable {
  readonly #byId = new Map<string, CrmContact>();
  /** External key to contact id. */
  readonly #idByKey = new Map<string, string>();

  /** The contact with this id (the stored object: callers copy before handing it out). */
  get(id: string): CrmContact | undefined {
    return this.#byId.get(id);
  }

  /** The contact carrying this external key (the stored object). */
  getByKey(externalKey: string): CrmContact | undefined {
    const id = this.#idByKey.get(externalKey);
    return id === undefined ? undefined : this.#byId.get(id);
  }

  /** Stores a contact, new or changed; throws when another contact already holds its external key. */
  set(contact: CrmContact): void {
    const holder = contact.externalKey === undefined ? undefined : this.#idByKey.get(contact.externalKey);
    if (holder !== undefined && holder !== contact.id) {
      // Only corrupt data gets here: the store checks the key before it creates a contact.
      throw new Error(`demo crm external key "${contact.externalKey}" is held by ${holder}, so ${contact.id} cannot take it too`);
    }
    const previous = this.#byId.get(contact.id)?.externalKey;
    if (previous !== undefined && previous !== contact.externalKey) this.#idByKey.delete(previous);
    if (contact.externalKey !== undefined) this.#idByKey.set(contact.externalKey, contact.id);
    this.#byId.set(contact.id, contact);
  }

  /** Removes a contact and frees its external key; returns what was removed. */
  delete(id: string): CrmContact | undefined {
    const contact = this.#byId.get(id);
    if (!contact) return undefined;
    this.#byId.delete(id);
    if (contact.externalKey !== undefined) this.#idByKey.delete(contact.externalKey);
    return contact;
  }

  /** Removes every contact and every external key. */
  clear(): void {
    this.#byId.clear();
    this.#idByKey.clear();
  }

  /** The stored contacts, in order of creation. */
  values(): IterableIterator<CrmContact> {
    return this.#byId.values();
  }
}
