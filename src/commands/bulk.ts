/**
 * `tidesync export --all <integration> <connector>`: starts a bulk export and follows it with a
 * progress bar (rate, ETA, the Web UI link); `tidesync bulk list|status|pause|resume|cancel`
 * steer running ones.
 */
import { SingleBar } from 'cli-progress';
import type { BulkMode } from '../activities/bulk-types';
import { bulkRate } from '../bulk-exports';
import type { TidesyncClient } from '../client';
import type { Servers } from '../config/servers';
import { formatDuration } from '../retry-policy';
import type { BulkExportResult, BulkProgress } from '../workflows/bulk-definitions';
import { openCommandContext } from './connect';

/** How often the progress bar asks the workflow where it stands (a query: no history event). */
export const PROGRESS_POLL_MS = 1000;

/** Statuses after which a bulk export does nothing more. */
const FINAL = new Set(['completed', 'completed_with_failures', 'failed', 'cancelled']);

/** Options of `tidesync export --all`. */
export interface BulkExportCommandOptions {
  readonly mode: BulkMode;
  readonly filter?: string;
  readonly pageSize?: number;
  readonly parallelism?: number;
  readonly wait: boolean;
  readonly json: boolean;
}

/** Starts a bulk export and, unless `--no-wait`, follows it to its end; exit code 1 unless it completed cleanly. */
export async function bulkExportCommand(integration: string, connector: string, options: BulkExportCommandOptions): Promise<number> {
  const ctx = await openCommandContext();
  try {
    const started = await ctx.client.startBulkExport({
      integration,
      connector,
      mode: options.mode,
      ...(options.filter !== undefined ? { scope: { filter: options.filter } } : {}),
      ...(options.pageSize !== undefined ? { pageSize: options.pageSize } : {}),
      ...(options.parallelism !== undefined ? { parallelism: options.parallelism } : {}),
    });
    const link = uiLink(ctx.servers, started.workflowId);
    if (!options.wait) {
      console.log(options.json ? JSON.stringify({ ...started, ui: link }) : `${started.workflowId}\tstarted${link ? `\t${link}` : ''}`);
      return 0;
    }
    console.error(`bulk export ${started.workflowId} started${link ? `; in the Web UI: ${link}` : ''}`);
    const result = await follow(ctx.client, started.workflowId);
    const summary = { workflowId: started.workflowId, ...summarize(result), ui: link };
    console.log(options.json ? JSON.stringify(summary) : describeResult(started.workflowId, result));
    return result.status === 'completed' ? 0 : 1;
  } finally {
    await ctx.close();
  }
}

/** Polls the export's progress into a bar on stderr until it ends, then returns its result. */
async function follow(client: TidesyncClient, workflowId: string): Promise<BulkExportResult> {
  const bar = new SingleBar({
    format:
      'bulk export [{bar}] {percentage}% {value}/{total} rows | {rate}/s | ETA {etaText} | written {written} skipped {skipped} failed {failed} | {status}',
    stream: process.stderr,
    hideCursor: true,
    // Without a terminal (CI, a pipe) a line every few seconds instead of a redrawn bar.
    noTTYOutput: true,
    notTTYSchedule: 5000,
  });
  let progress = await client.bulkProgress(workflowId);
  bar.start(progress.total, progress.done, payload(progress));
  try {
    while (!FINAL.has(progress.status)) {
      await new Promise((resolve) => setTimeout(resolve, PROGRESS_POLL_MS));
      progress = await client.bulkProgress(workflowId);
      bar.setTotal(progress.total);
      bar.update(progress.done, payload(progress));
    }
  } finally {
    bar.stop();
  }
  return client.waitForBulkExport(workflowId);
}

function payload(p: BulkProgress) {
  return {
    rate: p.rate,
    etaText: p.etaSeconds === null ? '-' : formatDuration(Math.max(p.etaSeconds, 0) * 1000 || 0) || '0s',
    written: p.written,
    skipped: p.skipped,
    failed: p.failed,
    status: p.status,
  };
}

/** The Web UI page of a workflow, when the UI's address is known (a `tidesync dev` stack). */
export function uiLink(servers: Servers, workflowId: string): string | null {
  if (!servers.uiUrl) return null;
  return `${servers.uiUrl}/namespaces/${encodeURIComponent(servers.temporal.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

function summarize(result: BulkExportResult) {
  const { status, mode, done, total, pages, runs, durationMs, error } = result;
  const activeMs = result.activeMs ?? durationMs;
  return {
    status,
    mode,
    done,
    total,
    ...result.counters,
    pages,
    runs,
    durationMs,
    activeMs,
    rate: bulkRate(result),
    failures: result.failures,
    error,
  };
}

function describeResult(workflowId: string, r: BulkExportResult): string {
  const c = r.counters;
  const pausedMs = r.durationMs - (r.activeMs ?? r.durationMs);
  const paused = pausedMs >= 1000 ? `, ${formatDuration(Math.round(pausedMs / 1000) * 1000)} of it paused` : '';
  const lines = [
    `${workflowId}\t${r.status}\t${r.done} rows in ${formatDuration(Math.round(r.durationMs / 1000) * 1000 || 1000)}${paused} ` +
      `(${Math.round(bulkRate(r))}/s): written=${c.written} skipped=${c.skipped} failed=${c.failed}`,
  ];
  for (const f of r.failures.slice(0, 10)) lines.push(`  ${f.key}: ${f.message}`);
  if (c.failed > 10) lines.push(`  ... ${c.failed - 10} more: tidesync failures`);
  if (r.error) lines.push(`  ${r.error}`);
  return lines.join('\n');
}

/** `tidesync bulk list`. */
export async function bulkListCommand(options: { integration?: string; running: boolean; json: boolean; limit: number }): Promise<number> {
  const ctx = await openCommandContext();
  try {
    const list = await ctx.client.listBulkExports({
      ...(options.integration !== undefined ? { integration: options.integration } : {}),
      running: options.running,
      limit: options.limit,
    });
    if (options.json) console.log(JSON.stringify(list));
    else if (list.length === 0) console.log('no bulk exports');
    else for (const b of list) console.log(`${b.workflowId}\t${b.status ?? '-'}\t${b.execution}\tstarted ${b.startTime.toISOString()}`);
    return 0;
  } finally {
    await ctx.close();
  }
}

/** `tidesync bulk status|pause|resume|cancel <id>`: prints the progress after the action. */
export async function bulkControlCommand(
  action: 'status' | 'pause' | 'resume' | 'cancel',
  workflowId: string,
  options: { json: boolean; reason?: string },
): Promise<number> {
  const ctx = await openCommandContext();
  try {
    const client = ctx.client;
    const progress =
      action === 'pause'
        ? await client.pauseBulkExport(workflowId)
        : action === 'resume'
          ? await client.resumeBulkExport(workflowId)
          : action === 'cancel'
            ? await client.cancelBulkExport(workflowId, options.reason)
            : await client.bulkProgress(workflowId);
    if (options.json) console.log(JSON.stringify({ workflowId, ...progress }));
    else {
      const eta = progress.etaSeconds === null ? '' : `, ETA ${formatDuration(progress.etaSeconds * 1000 || 1000)}`;
      console.log(
        `${workflowId}\t${progress.status}\t${progress.done}/${progress.total} rows, written ${progress.written}, skipped ${progress.skipped}, ` +
          `failed ${progress.failed}, ${progress.pages} pages, ${progress.rate}/s${eta}`,
      );
    }
    return 0;
  } finally {
    await ctx.close();
  }
}
