/**
 * The demo CRM's state: contacts with versions, stored idempotent responses and request
 * statistics. Every operation is synchronous, so an idempotency check and the write it guards
 * cannot interleave with another request. With a data file the state survives a restart.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { CrmApiError, validateFields, validatePatch, type CrmContact } from './crm-contact';

/** Oldest idempotency keys are forgotten past this many, so a long demo cannot grow without bound. */
const MAX_IDEMPOTENCY_KEYS = 10_000;

/** Request counters, as returned by `GET /_control/stats`. */
export interface CrmStats {
  /** Every `/contacts` request received, including rejected and faulted ones. */
  requests: number;
  byMethod: Record<string, number>;
  /** Applied creates, updates and deletes made through the API (remote-user edits excluded). */
  writes: number;
  writesByContact: Record<string, number>;
  /** Requests answered from a stored idempotent response. */
  replays: number;
  faultsServed: number;
}

/** A response remembered under an idempotency key, replayed verbatim for a repeated request. */
export interface StoredResponse {
  status: number;
  body: unknown;
  etag?: string | undefined;
}

const contactSchema = z.object({
  id: z.string(),
  version: z.number().int().positive(),
  firstName: z.string(),
  lastName: z.string(),
  email: z.string(),
  phone: z.string().nullable(),
  company: z.string().nullable(),
});

const storedResponseSchema = z.object({
  status: z.number().int(),
  body: z.unknown(),
  etag: z.string().optional(),
});

const dataFileSchema = z.object({
  nextId: z.number().int().positive(),
  contacts: z.array(contactSchema),
  idempotency: z.record(z.string(), z.object({ method: z.string(), path: z.string(), response: storedResponseSchema })),
});

type DataFile = z.infer<typeof dataFileSchema>;
type IdempotencyRecord = DataFile['idempotency'][string];

/**
 * Called synchronously with each write the store counts as ours (API creates, updates, deletes),
 * so an in-process observer such as the latency benchmark sees the moment a write is applied.
 */
export type CrmWriteHook = (contact: CrmContact) => void;

function emptyStats(): CrmStats {
  return { requests: 0, byMethod: {}, writes: 0, writesByContact: {}, replays: 0, faultsServed: 0 };
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
  readonly #dataFile: string | undefined;
  readonly #onWrite: CrmWriteHook | undefined;
  readonly #contacts = new Map<string, CrmContact>();
  readonly #idempotency = new Map<string, IdempotencyRecord>();
  #nextId = 1;
  #stats = emptyStats();

  private constructor(dataFile: string | undefined, onWrite: CrmWriteHook | undefined) {
    this.#dataFile = dataFile;
    this.#onWrite = onWrite;
  }

  /**
   * Opens a store, loading `dataFile` when it exists; a missing file starts empty. `onWrite` sees
   * every write counted in the stats.
   */
  static open(dataFile?: string, onWrite?: CrmWriteHook): CrmStore {
    const store = new CrmStore(dataFile, onWrite);
    if (dataFile !== undefined) store.#load(dataFile);
    return store;
  }

  /** All contacts, in id order of creation. */
  list(): CrmContact[] {
    return [...this.#contacts.values()].map((contact) => ({ ...contact }));
  }

  /** One contact, or a 404 error. */
  get(id: string): CrmContact {
    return { ...this.#require(id) };
  }

  /** Creates a contact at version 1. */
  create(body: unknown): CrmContact {
    const fields = validateFields(body);
    const contact: CrmContact = { id: `c_${this.#nextId}`, version: 1, ...fields };
    this.#nextId += 1;
    this.#contacts.set(contact.id, contact);
    this.#countWrite(contact);
    this.#save();
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
    this.#save();
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
    this.#save();
  }

  /**
   * The stored response for an idempotency key, if the key was used before. Reusing a key for a
   * different method or path is a client bug, answered with a 422 rather than a wrong replay.
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
    this.#idempotency.set(key, { method, path, response: structuredClone(response) });
    if (this.#idempotency.size > MAX_IDEMPOTENCY_KEYS) {
      const oldest = this.#idempotency.keys().next();
      if (!oldest.done) this.#idempotency.delete(oldest.value);
    }
    this.#save();
  }

  /** Counts one received `/contacts` request. */
  countRequest(method: string): void {
    this.#stats.requests += 1;
    this.#stats.byMethod[method] = (this.#stats.byMethod[method] ?? 0) + 1;
  }

  /** Counts one request answered with an injected fault. */
  countFault(): void {
    this.#stats.faultsServed += 1;
  }

  /** A copy of the counters. */
  stats(): CrmStats {
    return structuredClone(this.#stats);
  }

  /** Zeroes the counters. */
  resetStats(): void {
    this.#stats = emptyStats();
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
    this.#save();
    return { ...next };
  }

  #countWrite(contact: CrmContact): void {
    this.#stats.writes += 1;
    this.#stats.writesByContact[contact.id] = (this.#stats.writesByContact[contact.id] ?? 0) + 1;
    // A copy: the observer must not be able to change the stored contact.
    this.#onWrite?.({ ...contact });
  }

  #load(dataFile: string): void {
    let text: string;
    try {
      text = readFileSync(dataFile, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new Error(`cannot read demo crm data file ${dataFile}`, { cause: error });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new Error(`demo crm data file ${dataFile} is not valid JSON`, { cause: error });
    }
    const parsed = dataFileSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const path = issue?.path.map(String).join('.') || '(root)';
      throw new Error(`demo crm data file ${dataFile} is malformed at ${path}: ${issue?.message ?? 'unknown problem'}`);
    }
    this.#nextId = parsed.data.nextId;
    for (const contact of parsed.data.contacts) this.#contacts.set(contact.id, contact);
    for (const [key, record] of Object.entries(parsed.data.idempotency)) this.#idempotency.set(key, record);
  }

  #save(): void {
    if (this.#dataFile === undefined) return;
    const data: DataFile = {
      nextId: this.#nextId,
      contacts: [...this.#contacts.values()],
      idempotency: Object.fromEntries(this.#idempotency),
    };
    // Write then rename, so a crash mid-write never leaves a truncated file for the next run.
    const temporary = `${this.#dataFile}.${process.pid}.tmp`;
    writeFileSync(temporary, JSON.stringify(data, null, 2));
    renameSync(temporary, this.#dataFile);
  }
}
