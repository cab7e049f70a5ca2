/**
 * The demo CRM's state: contacts with versions, stored idempotent responses and request
 * statistics. Every operation is synchronous, so an idempotency check and the write it guards
 * cannot interleave with another request. With a data file the state survives a restart: each
 * request's changes are appended to a journal as one line (see `crm-journal.ts`).
 */
import { CrmApiError, validateFields, validatePatch, type CrmContact } from './crm-contact';
import type { FaultKind } from './crm-faults';
import { IdempotencyCache, type StoredResponse } from './crm-idempotency';
import { CrmJournal, type CrmStorage, type JournalOp, type Snapshot } from './crm-journal';

export type { StoredResponse } from './crm-idempotency';

/** Request counters, as returned by `GET /_control/stats`. */
export interface CrmStats {
  /** Every `/contacts` request received, including rejected and faulted ones. */
  requests: number;
  byMethod: Record<string, number>;
  /** Applied creates, updates and deletes made through the API (remote-user edits excluded). */
  writes: number;
  writesByContact: Record<string, number>;
  /** Requests, and items of batches, answered from a stored idempotent response. */
  replays: number;
  /** Requests, and items of batches, answered with an injected fault. */
  faultsServed: number;
  /** `faultsServed` by the fault's kind. */
  faultsByKind: Partial<Record<FaultKind, number>>;
}

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

function emptyStats(): CrmStats {
  return { requests: 0, byMethod: {}, writes: 0, writesByContact: {}, replays: 0, faultsServed: 0, faultsByKind: {} };
}

/** True when an `If-Match` header (absent, `*`, `"3"`, `W/"3"` or a list) allows `version`. */
function ifMatchAllows(header: string | undefined, version: number): boolean {
  if (header === undefined) return true;
  return header
    .split(',')
    .map((tag) => tag.trim().replace(/^W\//, ''))
    .some((tag) => tag === '*' || tag === `"${version}"` || tag === String(version));
}

/** The contacts, idempotency records and counters of one demo CRM. */
export class CrmStore {
  readonly #journal: CrmJournal | undefined;
  readonly #onWrite: CrmWriteHook | undefined;
  readonly #contacts = new Map<string, CrmContact>();
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
    const fields = validateFields(body);
    const contact: CrmContact = { id: `c_${this.#nextId}`, version: 1, ...fields };
    this.#nextId += 1;
    this.#contacts.set(contact.id, contact);
    this.#countWrite(contact);
    this.#record({ put: contact, nextId: this.#nextId });
    return { ...contact };
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

  /** Deletes a contact. */
  delete(id: string, ifMatch?: string): void {
    const deleted = this.#requireMatching(id, ifMatch);
    this.#contacts.delete(id);
    this.#countWrite(deleted);
    this.#record({ del: id });
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
    this.#record({ wipe: true });
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

  #update(current: CrmContact, changes: Partial<CrmContact>, ours: boolean): CrmContact {
    // Every accepted update bumps the version, even when no value changed, like most CRMs do.
    const next: CrmContact = { ...current, ...changes, id: current.id, version: current.version + 1 };
    this.#contacts.set(next.id, next);
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
    for (const contact of snapshot.contacts) this.#contacts.set(contact.id, contact);
    for (const [key, record] of snapshot.idempotency) this.#idempotency.set(key, record);
  }

  /** Applies a journalled change again, at start: the same effect as when it was made, no hook. */
  #replay(op: JournalOp): void {
    if ('put' in op) {
      this.#contacts.set(op.put.id, op.put);
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
