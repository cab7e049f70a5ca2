/**
 * The demo CRM's files: a snapshot (the data file) and an append-only journal beside it
 * (`<dataFile>.journal`), one JSON line per applied request, written with a single `write` so a
 * write costs the same with ten contacts stored or a million. Opening reads the snapshot and
 * replays the journal; compaction writes a new snapshot (temp file + rename) and empties the
 * journal. No fsync: a demo may lose its last writes to a power cut, never its earlier ones.
 */
import { closeSync, ftruncateSync, openSync, readFileSync, renameSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { z } from 'zod';
import type { CrmContact } from './crm-contact';
import type { IdempotencyRecord } from './crm-idempotency';

/**
 * Compact once the journal is this many times the snapshot written last, as Redis rewrites its
 * append-only file past 100% growth: the rewrites then cost a constant share of the writes.
 */
const COMPACT_RATIO = 2;
/** ...and not before it holds this much, so a small store does not rewrite its snapshot every write. */
const MIN_COMPACT_BYTES = 1024 * 1024;

const contactSchema = z.object({
  id: z.string(),
  version: z.number().int().positive(),
  firstName: z.string(),
  lastName: z.string(),
  email: z.string(),
  phone: z.string().nullable(),
  company: z.string().nullable(),
  externalKey: z.string().min(1).exactOptional(),
});

const responseSchema = z.object({ status: z.number().int(), body: z.unknown(), etag: z.string().optional() });
const recordSchema = z.object({ method: z.string(), path: z.string(), response: responseSchema, at: z.number() });

/** One change of the store, as replayed from the journal. */
export type JournalOp =
  { put: CrmContact; nextId?: number | undefined } | { del: string } | { key: string; record: IdempotencyRecord } | { wipe: true };

const opSchema = z.union([
  z.strictObject({ put: contactSchema, nextId: z.number().int().positive().optional() }),
  z.strictObject({ del: z.string() }),
  z.strictObject({ key: z.string(), record: recordSchema }),
  z.strictObject({ wipe: z.literal(true) }),
]);
const lineSchema = z.strictObject({ seq: z.number().int().positive(), ops: z.array(opSchema) });

/** What the snapshot holds; `idempotency` is oldest first. */
export interface Snapshot {
  nextId: number;
  contacts: CrmContact[];
  idempotency: Array<[string, IdempotencyRecord]>;
}

const snapshotSchema = z.object({
  /** The last journal line the snapshot includes; absent in data files of before the journal. */
  seq: z.number().int().nonnegative().default(0),
  nextId: z.number().int().positive(),
  contacts: z.array(contactSchema),
  // Data files of before the journal keep a record per key without `at`: they count as new.
  idempotency: z.union([
    z.array(z.tuple([z.string(), recordSchema])),
    z.record(z.string(), recordSchema.extend({ at: z.number().default(() => Date.now()) })).transform((r) => Object.entries(r)),
  ]),
});

/** What opening found: the snapshot (if any) and the journal's changes after it, in order. */
export interface Recovered {
  readonly snapshot: Snapshot | undefined;
  readonly changes: JournalOp[][];
  /** Bytes of a last line torn by a crash mid-append, dropped from the journal. */
  readonly tornBytes: number;
}

/** The sizes of a data file and its journal, and the compactions since the store opened. */
export interface CrmStorage {
  readonly journalBytes: number;
  readonly snapshotBytes: number;
  readonly compactions: number;
}

/** The snapshot and journal of one data file. */
export class CrmJournal {
  readonly #dataFile: string;
  #fd: number;
  #seq: number;
  #journalBytes: number;
  #snapshotBytes: number;
  #compactions = 0;

  private constructor(dataFile: string, fd: number, seq: number, journalBytes: number, snapshotBytes: number) {
    this.#dataFile = dataFile;
    this.#fd = fd;
    this.#seq = seq;
    this.#journalBytes = journalBytes;
    this.#snapshotBytes = snapshotBytes;
  }

  /** Opens the files of `dataFile` (creating the journal), cutting off a torn last line. */
  static open(dataFile: string): { journal: CrmJournal; recovered: Recovered } {
    const snapshotText = readIfExists(dataFile);
    const snapshot = snapshotText === undefined ? undefined : parseSnapshot(dataFile, snapshotText);
    const journalFile = `${dataFile}.journal`;
    const journalText = readIfExists(journalFile) ?? '';
    // A crash mid-append leaves a last line without its newline: it was never answered, drop it.
    const complete = journalText.slice(0, journalText.lastIndexOf('\n') + 1);
    const changes: JournalOp[][] = [];
    let seq = snapshot?.seq ?? 0;
    complete.split('\n').forEach((line, index) => {
      if (line === '') return;
      const entry = parseLine(journalFile, index + 1, line);
      // Lines the snapshot already holds survive a crash between its rename and the truncation.
      if (entry.seq <= (snapshot?.seq ?? 0)) return;
      changes.push(entry.ops as JournalOp[]);
      seq = entry.seq;
    });
    const fd = openSync(journalFile, 'a+');
    const bytes = Buffer.byteLength(complete);
    const tornBytes = Buffer.byteLength(journalText) - bytes;
    if (tornBytes > 0) ftruncateSync(fd, bytes);
    const journal = new CrmJournal(dataFile, fd, seq, bytes, snapshotText === undefined ? 0 : Buffer.byteLength(snapshotText));
    return { journal, recovered: { snapshot, changes, tornBytes } };
  }

  /** What the files hold now, and how often the journal was compacted since opening. */
  get storage(): CrmStorage {
    return { journalBytes: this.#journalBytes, snapshotBytes: this.#snapshotBytes, compactions: this.#compactions };
  }

  /** True once the journal has outgrown the last snapshot (see `COMPACT_RATIO`). */
  get shouldCompact(): boolean {
    return this.#journalBytes >= MIN_COMPACT_BYTES && this.#journalBytes > COMPACT_RATIO * this.#snapshotBytes;
  }

  /** Appends the changes of one request as one line, with one write. */
  append(ops: readonly JournalOp[]): void {
    this.#seq += 1;
    const line = `${JSON.stringify({ seq: this.#seq, ops })}\n`;
    writeSync(this.#fd, line);
    this.#journalBytes += Buffer.byteLength(line);
  }

  /** Replaces the snapshot with `state` (temp file + rename) and empties the journal. */
  compact(state: Snapshot): void {
    const text = JSON.stringify({ seq: this.#seq, ...state });
    const temporary = `${this.#dataFile}.${process.pid}.tmp`;
    writeFileSync(temporary, text);
    renameSync(temporary, this.#dataFile);
    // A crash right here leaves the old lines beside a snapshot that holds them: `seq` skips them.
    ftruncateSync(this.#fd, 0);
    this.#journalBytes = 0;
    this.#snapshotBytes = Buffer.byteLength(text);
    this.#compactions += 1;
  }

  /** Closes the journal; further appends fail. */
  close(): void {
    if (this.#fd < 0) return;
    closeSync(this.#fd);
    this.#fd = -1;
  }
}

function readIfExists(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read demo crm file ${file}`, { cause: error });
  }
}

function parseSnapshot(file: string, text: string): z.infer<typeof snapshotSchema> {
  const parsed = snapshotSchema.safeParse(parseJsonText(`demo crm data file ${file}`, text));
  if (parsed.success) return parsed.data;
  throw new Error(`demo crm data file ${file} is malformed at ${issuePath(parsed.error)}`);
}

function parseLine(file: string, line: number, text: string): z.infer<typeof lineSchema> {
  const parsed = lineSchema.safeParse(parseJsonText(`demo crm journal ${file} line ${line}`, text));
  if (parsed.success) return parsed.data;
  throw new Error(`demo crm journal ${file} line ${line} is malformed at ${issuePath(parsed.error)}`);
}

function parseJsonText(what: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new Error(`${what} is not valid JSON`, { cause: error });
  }
}

function issuePath(error: z.ZodError): string {
  const issue = error.issues[0];
  return `${issue?.path.map(String).join('.') || '(root)'}: ${issue?.message ?? 'unknown problem'}`;
}

/** The sizes of the files of `dataFile`, 0 for a missing one (for tests and the benchmark). */
export function crmFileSizes(dataFile: string): { snapshotBytes: number; journalBytes: number } {
  const size = (file: string): number => statSync(file, { throwIfNoEntry: false })?.size ?? 0;
  return { snapshotBytes: size(dataFile), journalBytes: size(`${dataFile}.journal`) };
}
