/**
 * The demo CRM's state: contacts with versions (indexed by id and by external key, see
 * `crm-table.ts`), stored idempotent responses and request statistics. Every operation is
 * synchronous, so an idempotency check and the write it guards cannot interleave with another
 * request. With a data file the state survives a restart: each request's changes are appended to
 * a journal as one line (see `crm-journal.ts`), external keys included.
 */
import { CrmApiError, validateFields, validatePatch, type CrmContact, type CrmContactFields } from './crm-contact';
import type { FaultKind } from './crm-faults';
import { IdempotencyCache, type StoredResponse } from './crm-idempotency';
import { CrmJournal, type CrmStorage, type JournalOp, type Snapshot } from './crm-journal';
import { type CrmStats, emptyStats } from './crm-stats';
import { ContactTable } from './crm-table';

export type { StoredResponse } from './crm-idempotency';
export type { CrmStats } from './crm-stats';

/**
 * Called synchronously with each write the store counts as ours (API creates, updates, deletes),
 * so an in-process observer such as the latency benchmark sees the moment a write is applied.
 */
export type CrmWriteHook = (contact: CrmContact) => void;

/** How to open a store; all optional: without a data file the store lives in memory only. */
export interface CrmStoreOptions {
  /** The snapshot file; the journal is `<dataFile>.journal` beside it. */
  readonly dataFile?: string | undefined;
  /** Sees every write counted in the stats. */
  readonly onWrite?: CrmWriteHook | undefined;
}

/** True when an `If-Match` header (absent, `*`, `"3"`, `W/"3"` or a list) allows `version`. */
function ifMatchAllows(header: string | undefined, version: number): boolean {
  if (header === undefined) return true;
  return header
    .split(',')
    .map((tag) => tag.trim().replace(/^W\//, ''))
    .some((tag) => tag === '*' || tag === `"${version}"` || tag === String(version));
}

/** The contacts (with their external key index), idempotency records and counters of one demo CRM. */
export class CrmStore {
  readonly #journal: CrmJournal | undefined;
  readonly #onWrite: CrmWriteHook | undefined;
  readonly #contacts = new ContactTable();
  readonly #idempotency: IdempotencyCache;
  #nextId = 1;
  #stats = emptyStats();
  /** The changes of the request being applied, journalled as one line when it ends. */
  #pending: JournalOp[] | undefined;

  private constructor(options: CrmStoreOptions) {
    this.#onWrite = options.onWrite;
    this.#idempotency = new IdempotencyCache();
    if (options.dataFile === undefined) return;
    const { journal, recovered } = CrmJournal.open(options.dataFile);
    this.#journal = journal;
    if (recovered.snapshot) this.#restore(recovered.snapshot);
    for (const ops of recovered.changes) ops.forEach((op) => this.#replay(op));
  }

  /**
   * Opens a store, loading the data file and replaying its journal when they exist; missing
   * files start empty, a torn last journal line (a crash mid-append) is dropped.
   */
  static open(options: CrmStoreOptions = {}): CrmStore {
    return new CrmStore(options);
  }

  /** All contacts, in id order of creation. */
  list(): CrmContact[] {
    return [...this.#contacts.values()].map((contact) => ({ ...contact }));
  }

  /** One contact, or a 404 error. */
  get(id: string): CrmContact {
    return { ...this.#require(id) };
  }

  /** The contact carrying `externalKey`, if any. */
  findByKey(externalKey: string): CrmContact | undefined {
    const contact = this.#contacts.getByKey(externalKey);
    return contact && { ...contact };
  }

  /**
   * Runs `fn` and journals every change it made as one line, so a crash keeps all of a
   * request's changes (a whole batch, and the idempotency record that guards it) or none.
   */
  atomic<T>(fn: () => T): T {
    if (this.#pending) return fn();
    this.#pending = [];
    try {
      return fn();
    } finally {
      const ops = this.#pending;
      this.#pending = undefined;
      if (ops.length > 0) this.#append(ops);
    }
  }

  /** Creates a contact at version 1. */
  create(body: unknown): CrmContact {
    return this.#insert(validateFields(body), undefined);
  }

  /**
   * Replaces every field of the contact carrying `externalKey` (`created: false`), or creates a
   * contact carrying it (`created: true`). The key itself never changes.
   */
  upsertByKey(externalKey: string, body: unknown): { contact: CrmContact; created: boolean } {
    if (externalKey === '') throw new CrmApiError(400, 'invalid_external_key', 'external key must not be empty');
    const fields = validateFields(body);
    const current = this.#contacts.getByKey(externalKey);
    if (current) return { contact: this.#update(current, fields, true), created: false };
    return { contact: this.#insert(fields, externalKey), created: true };
  }

  /** Replaces every field of a contact (omitted optional fields are cleared). */
  replace(id: string, body: unknown, ifMatch?: string): CrmContact {
    const current = this.#requireMatching(id, ifMatch);
    return this.#update(current, validateFields(body), true);
  }

  /** Changes the given fields of a contact. */
  patch(id: string, body: unknown, ifMatch?: string): CrmContact {
    const current = this.#requireMatching(id, ifMatch);
    return this.#update(current, validatePatch(body), true);
  }

  /** Deletes a contact, freeing its external key. */
  delete(id: string, ifMatch?: string): void {
    const deleted = this.#requireMatching(id, ifMatch);
    this.#contacts.delete(id);
    this.#countWrite(deleted);
    this.#record({ del: id });
  }

  /** Deletes the contact carrying `externalKey`, or answers 404. */
  deleteByKey(externalKey: string): void {
    const contact = this.#contacts.getByKey(externalKey);
    if (!contact) throw new CrmApiError(404, 'not_found', `no contact has external key "${externalKey}"`);
    this.delete(contact.id);
  }

  /** Changes a contact as a person using the CRM would: bumps the version, is not our write. */
  editAsRemoteUser(id: string, body: unknown): CrmContact {
    return this.#update(this.#require(id), validatePatch(body), false);
  }

  /**
   * Removes all contacts and idempotency records. Ids keep counting up, so a sync state that
   * still points at an old id can never silently address a new, unrelated contact.
   */
  wipe(): void {
    this.#contacts.clear();
    this.#idempotency.clear();
    // Nothing journaled before a wipe matters any more: an empty snapshot replaces the journal at
    // once (a wipe line then a compaction later would carry the dead lines until that compaction,
    // and when it came would depend on what was written before the wipe). Journals of older
    // versions may still hold wipe lines: they replay as ever.
    if (this.#journal) this.#journal.compact(this.#snapshot());
  }

  /**
   * The stored response for an idempotency key, if the key was used before (and is still kept).
   * Reusing a key for a different method or path is a client bug, answered with a 422 rather
   * than a wrong replay.
   */
  findReplay(key: string, method: string, path: string): StoredResponse | undefined {
    const record = this.#idempotency.get(key);
    if (!record) return undefined;
    if (record.method !== method || record.path !== path) {
      throw new CrmApiError(
        422,
        'idempotency_key_reused',
        `idempotency key "${key}" was first used for ${record.method} ${record.path}, not ${method} ${path}`,
      );
    }
    this.#stats.replays += 1;
    return structuredClone(record.response);
  }

  /** Remembers the response of an applied request under its idempotency key. */
  remember(key: string, method: string, path: string, response: StoredResponse): void {
    const record = { method, path, response: structuredClone(response), at: Date.now() };
    this.#idempotency.set(key, record);
    this.#record({ key, record });
  }

  /** Counts one received `/contacts` request. */
  countRequest(method: string): void {
    this.#stats.requests += 1;
    this.#stats.byMethod[method] = (this.#stats.byMethod[method] ?? 0) + 1;
  }

  /** Counts one request, or one item of a batch, answered with an injected fault. */
  countFault(kind: FaultKind): void {
    this.#stats.faultsServed += 1;
    this.#stats.faultsByKind[kind] = (this.#stats.faultsByKind[kind] ?? 0) + 1;
  }

  /** A copy of the counters. */
  stats(): CrmStats {
    return structuredClone(this.#stats);
  }

  /** Zeroes the counters. */
  resetStats(): void {
    this.#stats = emptyStats();
  }

  /** The data file's sizes and compactions; null for a store in memory. */
  storage(): CrmStorage | null {
    return this.#journal?.storage ?? null;
  }

  /** Compacts the journal into the snapshot and closes it; the store must not be used after. */
  close(): void {
    if (!this.#journal) return;
    if (this.#journal.storage.journalBytes > 0) this.#journal.compact(this.#snapshot());
    this.#journal.close();
  }

  #require(id: string): CrmContact {
    const contact = this.#contacts.get(id);
    if (!contact) throw new CrmApiError(404, 'not_found', `contact ${id} does not exist`);
    return contact;
  }

  #requireMatching(id: string, ifMatch: string | undefined): CrmContact {
    const contact = this.#require(id);
    if (!ifMatchAllows(ifMatch, contact.version)) {
      throw new CrmApiError(
        412,
        'version_conflict',
        `contact ${id} is at version ${contact.version}, but If-Match asked for ${ifMatch ?? '(none)'}`,
        { currentVersion: contact.version },
      );
    }
    return contact;
  }

  #insert(fields: CrmContactFields, externalKey: string | undefined): CrmContact {
    const contact: CrmContact = { id: `c_${this.#nextId}`, version: 1, ...fields, ...(externalKey === undefined ? {} : { externalKey }) };
    this.#nextId += 1;
    this.#contacts.set(contact);
    this.#countWrite(contact);
    this.#record({ put: contact, nextId: this.#nextId });
    return { ...contact };
  }

  #update(current: CrmContact, changes: Partial<CrmContact>, ours: boolean): CrmContact {
    // Every accepted update bumps the version, even when no value changed, like most CRMs do.
    // The external key comes from `current`: no body can carry one, so it never changes.
    const next: CrmContact = { ...current, ...changes, id: current.id, version: current.version + 1 };
    this.#contacts.set(next);
    if (ours) this.#countWrite(next);
    this.#record({ put: next });
    return { ...next };
  }

  #countWrite(contact: CrmContact): void {
    this.#stats.writes += 1;
    this.#stats.writesByContact[contact.id] = (this.#stats.writesByContact[contact.id] ?? 0) + 1;
    // A copy: the observer must not be able to change the stored contact.
    this.#onWrite?.({ ...contact });
  }

  /** Journals one change: with the request's others inside `atomic`, else on its own line. */
  #record(op: JournalOp): void {
    if (!this.#journal) return;
    if (this.#pending) this.#pending.push(op);
    else this.#append([op]);
  }

  #append(ops: JournalOp[]): void {
    if (!this.#journal) return;
    this.#journal.append(ops);
    if (this.#journal.shouldCompact) this.#journal.compact(this.#snapshot());
  }

  #snapshot(): Snapshot {
    return { nextId: this.#nextId, contacts: [...this.#contacts.values()], idempotency: this.#idempotency.entries() };
  }

  #restore(snapshot: Snapshot): void {
    this.#nextId = snapshot.nextId;
    for (const contact of snapshot.contacts) this.#contacts.set(contact);
    for (const [key, record] of snapshot.idempotency) this.#idempotency.set(key, record);
  }

  /** Applies a journalled change again, at start: the same effect as when it was made, no hook. */
  #replay(op: JournalOp): void {
    if ('put' in op) {
      this.#contacts.set(op.put);
      if (op.nextId !== undefined) this.#nextId = Math.max(this.#nextId, op.nextId);
    } else if ('del' in op) {
      this.#contacts.delete(op.del);
    } else if ('key' in op) {
      this.#idempotency.set(op.key, op.record);
    } else {
      this.#contacts.clear();
      this.#idempotency.clear();
    }
  }
}
