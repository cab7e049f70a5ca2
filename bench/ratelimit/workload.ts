/**
 * The workload every phase runs: a bulk export by ids (pages of `PAGE_SIZE`, `PARALLELISM` at
 * once) and per-entity exports of other ids, of one integration, started together; each part's
 * ids are fresh contacts, so every request is a create and no phase sees another's rows.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { BulkExportResult, TidesyncClient } from 'tidesync';
import type { DemoCrmServer } from '../../examples/demo/remote/crm-server';

/** Rows per bulk page: one batch request to the CRM each. */
export const PAGE_SIZE = 10;
/** Bulk pages in flight at once (tidesync's default). */
export const PARALLELISM = 4;
/** The path of the CRM's batch upsert; every other request is a per-entity one. */
export const BATCH_PATH = '/contacts/batch';

const CONNECTOR = 'contact';

/** The ids of one run of the workload. */
export interface Workload {
  readonly bulkIds: readonly number[];
  readonly singleIds: readonly number[];
}

/** Hands out seeded contact ids, each once (ids of the seed are 1..n). */
export class IdRange {
  #next = 1;

  /** The ids handed out so far. */
  get used(): number {
    return this.#next - 1;
  }

  /** A workload of `pages` bulk pages and `singles` per-entity exports. */
  take(pages: number, singles: number): Workload {
    const take = (n: number) => Array.from({ length: n }, () => this.#next++);
    return { bulkIds: take(pages * PAGE_SIZE), singleIds: take(singles) };
  }
}

/** What one run of the workload did. */
export interface WorkloadRun {
  readonly bulk: BulkExportResult;
  readonly ms: number;
}

/** Starts both parts at once and waits until the bulk export finished and the CRM created every single entity. */
export async function runWorkload(
  client: TidesyncClient,
  remote: DemoCrmServer,
  integration: string,
  workload: Workload,
  timeoutMs: number,
): Promise<WorkloadRun> {
  const began = Date.now();
  const [started, scheduled] = await Promise.all([
    client.startBulkExport({
      integration,
      connector: CONNECTOR,
      scope: { ids: workload.bulkIds },
      pageSize: PAGE_SIZE,
      parallelism: PARALLELISM,
    }),
    client.scheduleExports({ integration, connector: CONNECTOR, ids: workload.singleIds }),
  ]);
  for (const s of scheduled) if (!s.scheduled) throw new Error(`per-entity export of ${s.key} was not scheduled: ${s.reason}`);
  const deadline = began + timeoutMs;
  const created = () => remote.requests().filter((r) => r.method === 'POST' && r.path === '/contacts' && r.status === 201).length;
  const singles = (async () => {
    while (created() < workload.singleIds.length) {
      if (Date.now() > deadline) {
        throw new Error(`the CRM created ${created()} of ${workload.singleIds.length} per-entity contacts in ${timeoutMs} ms`);
      }
      await sleep(100);
    }
  })();
  const bulk = await Promise.race([
    client.waitForBulkExport(started.workflowId),
    sleep(timeoutMs, null, { ref: false }).then(() => {
      throw new Error(`bulk export ${started.workflowId} did not finish within ${timeoutMs} ms`);
    }),
  ]);
  await singles;
  if (bulk.counters.written !== workload.bulkIds.length) {
    throw new Error(`bulk export ${started.workflowId} wrote ${bulk.counters.written} of ${workload.bulkIds.length} rows (${bulk.status})`);
  }
  return { bulk, ms: Date.now() - began };
}
