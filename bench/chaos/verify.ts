/**
 * The soak's verdict, from both sides once everything is quiet: every local contact the soak made
 * (ids 1..maxId) against the demo CRM's records, traced back by the `chaos.<id>.` in their emails,
 * and against tidesync's failed records.
 */
import type { Kysely } from 'kysely';
import type { TidesyncClient } from 'tidesync';
import { DemoContactProcessor } from '../../examples/demo/contact-processor';
import { type Demo, compareRemoteWithLocal } from '../../examples/demo/demo-setup';
import type { LocalContact } from '../../examples/demo/local-contacts';
import type { CrmContact } from '../../examples/demo/remote/crm-contact';
import { localIdOfEmail } from './load';
import type { WriteObserver } from './remote-watch';

/** How many examples of each problem the report lists. */
const EXAMPLES = 10;
/** A write a run sent may be applied by a slow remote this long after the run ended (the slow faults' delay). */
const LATE_APPLY_MS = 5000;

/** When a bulk export in mode `all` ran (ms since the epoch): it writes every row again, once. */
export interface RewriteWindow {
  readonly workflowId: string;
  readonly startedAt: number;
  readonly endedAt: number;
}

/**
 * Splits the updates that left a contact as it was into the rewrites of `all` runs (at most one
 * per contact and run, within the run's time) and the rest: effects applied twice.
 */
export function classifyRepeatedWrites<T extends { remoteId: string; at: number }>(
  repeated: readonly T[],
  windows: readonly RewriteWindow[],
): { forced: T[]; duplicated: T[] } {
  const credited = new Set<string>();
  const forced: T[] = [];
  const duplicated: T[] = [];
  for (const write of repeated) {
    const run = windows.find(
      (w) => write.at >= w.startedAt && write.at <= w.endedAt + LATE_APPLY_MS && !credited.has(`${w.workflowId} ${write.remoteId}`),
    );
    if (run) {
      credited.add(`${run.workflowId} ${write.remoteId}`);
      forced.push(write);
    } else duplicated.push(write);
  }
  return { forced, duplicated };
}

/** What the checks found. */
export interface Verdict {
  /** Local contacts (or deletes) the remote does not reflect and that are not listed as failed. */
  readonly lost: number;
  /** Remote effects applied twice: extra remote records of one contact, plus repeated writes. */
  readonly duplicates: number;
  /** The failed records are exactly the contacts the remote must refuse. */
  readonly failedAsExpected: boolean;
  /** Every contact not failed equals its remote record (read back over HTTP), and no remote record is left over. */
  readonly remoteMatchesLocal: boolean;
  readonly detail: {
    readonly localContacts: number;
    readonly deletedContacts: number;
    readonly remoteRecords: number;
    readonly extraRemoteRecords: number;
    /** Local contacts with more than one remote record. */
    readonly extraRecordExamples: ReadonlyArray<{ id: number; remoteIds: string[] }>;
    readonly repeatedWrites: number;
    /** Updates that left a contact as it was because an `all` run pushed it again (not duplicates). */
    readonly allModeRewrites: number;
    readonly invalidContacts: number;
    readonly failedRecords: number;
    readonly unexpectedlyFailed: readonly string[];
    readonly invalidNotFailed: readonly string[];
    readonly lost: ReadonlyArray<{ id: number; problem: string }>;
    readonly mismatches: ReadonlyArray<{ id: number; problem: string }>;
    readonly strayRemoteRecords: readonly string[];
  };
}

const FIELDS = ['firstName', 'lastName', 'email', 'phone', 'company'] as const;

function sameFields(expected: Record<string, unknown>, remote: CrmContact): boolean {
  return FIELDS.every((f) => (expected[f] ?? null) === ((remote as unknown as Record<string, unknown>)[f] ?? null));
}

/** Checks both sides; see `Verdict`. */
export async function verify(options: {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly db: Kysely<any>;
  readonly client: Pick<TidesyncClient, 'syncStates' | 'listFailures'>;
  readonly demo: Demo;
  readonly integration: string;
  readonly maxId: number;
  readonly writes: WriteObserver;
  /** The `all` bulk runs, whose rewrites of unchanged contacts are expected. */
  readonly rewrites: readonly RewriteWindow[];
}): Promise<Verdict & { readonly repeated: WriteObserver['repeated'] }> {
  const { db, client, demo, integration, maxId, writes } = options;
  const { forced, duplicated } = classifyRepeatedWrites(writes.repeated, options.rewrites);
  const rows = (await db.selectFrom('contacts').selectAll().orderBy('id').execute()) as LocalContact[];
  const local = new Map(rows.map((r) => [r.id, r]));
  const failed = new Set((await client.listFailures({ integration, connector: 'contact' })).map((f) => Number(f.key)));
  // The invalid set, from the data itself: an email without '@' is refused by the CRM.
  const invalid = new Set(rows.filter((r) => r.email !== null && !r.email.includes('@')).map((r) => r.id));

  const remote = demo.remote.contacts();
  const byLocal = new Map<number, CrmContact[]>();
  const stray: string[] = [];
  for (const contact of remote) {
    const id = localIdOfEmail(contact.email);
    if (id === null || id > maxId) stray.push(contact.id);
    else byLocal.set(id, [...(byLocal.get(id) ?? []), contact]);
  }

  const processor = new DemoContactProcessor();
  const lost: Array<{ id: number; problem: string }> = [];
  let extra = 0;
  const doubled: Array<{ id: number; remoteIds: string[] }> = [];
  for (let id = 1; id <= maxId; id++) {
    const records = byLocal.get(id) ?? [];
    extra += Math.max(0, records.length - 1);
    if (records.length > 1) doubled.push({ id, remoteIds: records.map((r) => r.id) });
    if (failed.has(id)) continue; // listed as failed: visible and retryable, not lost
    const row = local.get(id);
    if (!row) {
      if (records.length > 0) lost.push({ id, problem: `deleted locally, still on the remote as ${records.map((r) => r.id).join(', ')}` });
      continue;
    }
    const expected = processor.process(row as unknown as Record<string, unknown>);
    if (expected.kind === 'skip') continue;
    if (records.length === 0) lost.push({ id, problem: 'not on the remote' });
    else if (!records.some((r) => sameFields(expected.data, r))) {
      lost.push({ id, problem: `remote differs: ${JSON.stringify(expected.data)} locally, ${JSON.stringify(records)} remotely` });
    }
  }

  const comparable = rows.filter((r) => !failed.has(r.id)).map((r) => r.id);
  const comparison = await compareRemoteWithLocal(demo, db, client, comparable);
  const deletedButRemote = [...byLocal.keys()].filter((id) => !local.has(id) && !failed.has(id));
  const unexpectedlyFailed = [...failed].filter((id) => !invalid.has(id));
  const invalidNotFailed = [...invalid].filter((id) => !failed.has(id));
  return {
    lost: lost.length,
    duplicates: extra + duplicated.length,
    repeated: duplicated,
    failedAsExpected: unexpectedlyFailed.length === 0 && invalidNotFailed.length === 0,
    remoteMatchesLocal: comparison.matches && deletedButRemote.length === 0 && stray.length === 0,
    detail: {
      localContacts: rows.length,
      deletedContacts: maxId - rows.length,
      remoteRecords: remote.length,
      extraRemoteRecords: extra,
      extraRecordExamples: doubled.slice(0, EXAMPLES),
      repeatedWrites: duplicated.length,
      allModeRewrites: forced.length,
      invalidContacts: invalid.size,
      failedRecords: failed.size,
      unexpectedlyFailed: unexpectedlyFailed.slice(0, EXAMPLES).map(String),
      invalidNotFailed: invalidNotFailed.slice(0, EXAMPLES).map(String),
      lost: lost.slice(0, EXAMPLES),
      mismatches: comparison.mismatches.slice(0, EXAMPLES),
      strayRemoteRecords: stray.slice(0, EXAMPLES),
    },
  };
}
