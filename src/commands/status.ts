/**
 * `tidesync status`: each integration's circuit breaker and rate limiter, then recent job
 * executions as a table (or JSON).
 */
import { formatRate } from '../rate-limit';
import { formatDuration } from '../retry-policy';
import type { IntegrationHealth } from '../store/integration-health';
import { encodeEntityId, parseEntityId } from '../entity-id';
import type { RateLimitState } from '../store/rate-limits';
import { openCommandContext } from './connect';

/** Options of the status command. */
export interface StatusCommandOptions {
  readonly json: boolean;
  readonly limit: number;
  readonly integration?: string;
  readonly connector?: string;
  /** Only the runs that exported this entity. */
  readonly entity?: string;
}

/**
 * Prints each integration's breaker (a degraded one with its failure, probes and next probe), then
 * recent executions, newest first. `--json` prints the executions only, as before.
 */
export async function statusCommand(options: StatusCommandOptions): Promise<number> {
  const ctx = await openCommandContext();
  try {
    // Normalised as the engine writes it (composite ids sorted by column); a bad id is an error here.
    const entity = options.entity === undefined ? undefined : encodeEntityId(parseEntityId(options.entity));
    if (!options.json && entity === undefined) {
      const only = options.integration ? { integration: options.integration } : {};
      const health = await ctx.client.integrationHealth(only);
      const limits = new Map((await ctx.client.rateLimits(only)).map((l) => [l.integration, l]));
      for (const h of health) {
        console.log(describeHealth(h));
        const limit = limits.get(h.integration);
        const line = limit ? describeRateLimit(limit) : null;
        if (line) console.log(line);
      }
      if (health.length > 0) console.log('');
    }
    const rows = await ctx.client.recentExecutions({
      limit: options.limit,
      ...(options.integration ? { integration: options.integration } : {}),
      ...(options.connector ? { connector: options.connector } : {}),
      ...(entity !== undefined ? { entity } : {}),
    });
    if (options.json) {
      console.log(JSON.stringify(rows));
      return 0;
    }
    if (entity !== undefined) {
      // The same runs in the Temporal UI: every run lists the entities it exported.
      console.log(`runs that exported entity ${entity} (Temporal UI: TidesyncEntityIds = ${JSON.stringify(entity)})`);
    }
    if (rows.length === 0) {
      console.log(entity === undefined ? 'no job executions yet' : `no job execution exported entity ${entity}`);
      return 0;
    }
    const table = rows.map((r) => ({
      started: r.started_at.toISOString().replace('T', ' ').slice(0, 19),
      job: r.job,
      integration: r.integration,
      connector: r.connector,
      ids: r.entity_ids.length > 3 ? `${r.entity_ids.slice(0, 3).join(',')},… (${r.entity_ids.length})` : r.entity_ids.join(','),
      status: r.status,
      'r/p/w/s/f': `${r.read_count}/${r.processed_count}/${r.written_count}/${r.skipped_count}/${r.failed_count}`,
      error: r.failed_step ? `${r.failed_step}: ${r.error ?? ''}` : (r.failures[0]?.message ?? ''),
      run: `${r.workflow_id} #${r.iteration}`,
    }));
    const columns = Object.keys(table[0] as object) as Array<keyof (typeof table)[number]>;
    const widths = columns.map((c) => Math.min(60, Math.max(c.length, ...table.map((row) => row[c].length))));
    const line = (cells: string[]) => cells.map((cell, i) => cell.slice(0, widths[i]).padEnd(widths[i] ?? 0)).join('  ');
    console.log(line(columns));
    for (const row of table) console.log(line(columns.map((c) => row[c])));
    return 0;
  } finally {
    await ctx.close();
  }
}

const time = (date: Date | null): string => (date ? date.toISOString().replace('T', ' ').slice(0, 19) : '-');

/** One line about an integration's breaker. */
export function describeHealth(h: IntegrationHealth): string {
  if (h.state === 'degraded') {
    return (
      `integration ${h.integration}: DEGRADED since ${time(h.degradedAt)} (${h.consecutiveFailures} failed calls in a row; last: ` +
      `${h.lastError ?? 'unknown'}); exports wait, ${h.probes} probes so far, next probe at ${time(h.nextProbeAt)}`
    );
  }
  const recovered = h.recoveredAt ? `, recovered ${time(h.recoveredAt)} after ${h.probes} probes` : '';
  const streak = h.consecutiveFailures > 0 ? `, ${h.consecutiveFailures} failed calls in a row (last: ${h.lastError ?? 'unknown'})` : '';
  return `integration ${h.integration}: healthy${streak}${recovered}`;
}

/** What the limiter does now, when it is not simply at the declared limit: a cut rate, a pause; else null. */
export function limiterNow(l: RateLimitState): string | null {
  const parts: string[] = [];
  if (l.currentRate !== null && l.requestsPerSecond !== null && l.currentRate < l.requestsPerSecond - 1e-9) {
    parts.push(`now ${formatRate(l.currentRate)}, climbing back after a 429`);
  }
  if (l.pausedUntil) {
    const asked = l.lastRetryAfterMs !== null ? ` (Retry-After ${formatDuration(l.lastRetryAfterMs)})` : '';
    parts.push(`PAUSED until ${time(l.pausedUntil)} after a 429${asked}`);
  }
  return parts.length > 0 ? parts.join('; ') : null;
}

/** One line about an integration's rate limits and limiter; null for one without limits that never got a 429. */
export function describeRateLimit(l: RateLimitState): string | null {
  const limited = l.requestsPerSecond !== null || l.maxConcurrent !== null;
  if (!limited && l.throttles === 0) return null;
  const declared = limited
    ? `rate limit ${formatRate(l.requestsPerSecond)}, at most ${l.maxConcurrent ?? 'unlimited'} in flight`
    : 'no rate limit';
  const now = limiterNow(l);
  const seen = l.throttles > 0 ? `; ${l.throttles} 429s so far, last at ${time(l.lastThrottledAt)}` : '';
  return `integration ${l.integration}: ${declared}${now ? `; ${now}` : ''}${seen}`;
}
