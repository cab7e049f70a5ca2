/**
 * Sets up the demo integration on a database: the local `contacts` table with seed rows, a
 * running demo CRM, and the `demo` integration pointing at it. Used by `tidesync dev` and tests.
 */
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Integration, TidesyncClient } from 'tidesync';
import { DEMO_INTEGRATION_TYPE } from './contact-connector';
import { DemoContactProcessor } from './contact-processor';
import { ensureContactsTable, type LocalContact, seedContacts } from './local-contacts';
import { DemoCrmClient, type RemoteContact } from './remote/crm-client';
import { DemoCrmServer } from './remote/crm-server';
import type { CrmWriteHook } from './remote/crm-store';

/** The environment variable the demo integration's secret reference names. */
export const DEMO_TOKEN_ENV = 'TIDESYNC_DEMO_CRM_TOKEN';

/** Options of `setupDemo`. */
export interface DemoSetupOptions {
  /** The application's database (the demo's `contacts` table lives there). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly db: Kysely<any>;
  /** Configures the integration. */
  readonly client: Pick<TidesyncClient, 'upsertIntegration'>;
  /** How many contacts to seed when the table is empty. */
  readonly contacts: number;
  /** Integration name; default `demo`. */
  readonly integrationName?: string;
  /** Where the demo CRM keeps its data between runs; in memory when omitted. */
  readonly dataFile?: string;
  /** Sees every write the CRM applies for us (the latency benchmark times them). */
  readonly onWrite?: CrmWriteHook;
  /** Create contacts keyed by their local id (the integration's `transport.upsertByKey`); default false. */
  readonly upsertByKey?: boolean;
}

/** A running demo: its CRM, its integration and a client for the CRM. */
export interface Demo {
  readonly remote: DemoCrmServer;
  readonly integration: Integration;
  readonly crm: DemoCrmClient;
  readonly seeded: number;
}

/** Seeds contacts, starts the demo CRM and configures the integration. */
export async function setupDemo(options: DemoSetupOptions): Promise<Demo> {
  await ensureContactsTable(options.db);
  const seeded = await seedContacts(options.db, options.contacts);
  // The token lives in the environment; the integration stores only a reference to it.
  const token = process.env[DEMO_TOKEN_ENV] || randomBytes(16).toString('hex');
  process.env[DEMO_TOKEN_ENV] = token;
  const remote = await DemoCrmServer.start({
    token,
    port: 0,
    ...(options.dataFile ? { dataFile: options.dataFile } : {}),
    ...(options.onWrite ? { onWrite: options.onWrite } : {}),
  });
  const integration = await options.client.upsertIntegration({
    type: DEMO_INTEGRATION_TYPE,
    name: options.integrationName ?? 'demo',
    transport: { baseUrl: remote.url, ...(options.upsertByKey ? { upsertByKey: true } : {}) },
    secretRef: `env:${DEMO_TOKEN_ENV}`,
  });
  return { remote, integration, crm: new DemoCrmClient({ baseUrl: remote.url, token }), seeded };
}

/** Ids of every local contact, in id order. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function localContactIds(db: Kysely<any>): Promise<number[]> {
  const rows = await db.selectFrom('contacts').select('id').orderBy('id').execute();
  return rows.map((r: { id: number }) => r.id);
}

/** The result of comparing the remote with the local table. */
export interface RemoteComparison {
  readonly matches: boolean;
  readonly checked: number;
  readonly mismatches: ReadonlyArray<{ id: number; problem: string }>;
  /** Contacts on the remote when all were compared (more than `checked`: records no local contact owns); else null. */
  readonly remoteContacts: number | null;
}

/**
 * Reads every local contact back from the remote (by the remote id in its sync state) and
 * compares the fields the processor maps (all contacts, or those in `ids`). Contacts the processor
 * skips are not expected remotely.
 */
export async function compareRemoteWithLocal(
  demo: Pick<Demo, 'integration' | 'crm'>,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  db: Kysely<any>,
  client: Pick<TidesyncClient, 'syncStates'>,
  ids?: readonly number[],
): Promise<RemoteComparison> {
  let query = db.selectFrom('contacts').selectAll().orderBy('id');
  if (ids) query = query.where('id', 'in', ids);
  const contacts = (await query.execute()) as LocalContact[];
  const states = await client.syncStates({ integration: demo.integration.name, connector: 'contact' });
  const remoteIds = new Map(states.map((s) => [s.key, s.remoteId]));
  // All of them: one list request (100,000 contacts of a bulk export would be as many GETs); some: a GET each.
  const listed = ids ? null : new Map((await demo.crm.list()).map((c) => [c.id, c]));
  const processor = new DemoContactProcessor();
  const mismatches: Array<{ id: number; problem: string }> = [];
  let checked = 0;
  for (const contact of contacts) {
    const expected = processor.process(contact as unknown as Record<string, unknown>);
    if (expected.kind === 'skip') continue;
    checked += 1;
    const remoteId = remoteIds.get(String(contact.id));
    if (!remoteId) {
      mismatches.push({ id: contact.id, problem: 'never exported (no remote id)' });
      continue;
    }
    const remote: RemoteContact | null = listed ? (listed.get(remoteId) ?? null) : await demo.crm.get(remoteId);
    if (!remote) {
      mismatches.push({ id: contact.id, problem: `remote contact ${remoteId} not found` });
      continue;
    }
    for (const [field, value] of Object.entries(expected.data)) {
      const actual = (remote as Record<string, unknown>)[field];
      if ((actual ?? null) !== (value ?? null)) {
        mismatches.push({ id: contact.id, problem: `${field}: local ${JSON.stringify(value)}, remote ${JSON.stringify(actual)}` });
      }
    }
  }
  return { matches: mismatches.length === 0, checked, mismatches, remoteContacts: listed?.size ?? null };
}
