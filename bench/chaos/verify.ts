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
    readonly repeatedWrites: number;
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
}): Promise<Verdict> {
  const { db, client, demo, integration, maxId, writes } = options;
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
  for (let id = 1; id <= maxId; id++) {
    const records = byLocal.get(id) ?? [];
    extra += Math.max(0, records.length - 1);
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
    duplicates: extra + writes.repeated.length,
    failedAsExpected: unexpectedlyFailed.length === 0 && invalidNotFailed.length === 0,
    remoteMatchesLocal: comparison.matches && deletedButRemote.length === 0 && stray.length === 0,
    detail: {
      localContacts: rows.length,
      deletedContacts: maxId - rows.length,
      remoteRecords: remote.length,
      extraRemoteRecords: extra,
      repeatedWrites: writes.repeated.length,
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
