/**
 * How long tidesync keeps retrying a change the remote fails to take, and when an integration's
 * circuit breaker trips: the defaults with their reasons, duration parsing, and the waits of the
 * export workflow's retry loop. Pure code: workflows, activities, the store and the CLI share it.
 */

/**
 * How long transient failures (5xx, timeouts, connection resets, 429) of one change are retried
 * before its entity is marked `failed`: 72 hours. Remotes go down for hours, and an outage that
 * starts on a Friday evening is often fixed on Monday morning; tools that push rows to SaaS
 * remotes retry failed rows on their following runs for days. Shorter windows turn every long
 * outage into manual `retry-failed` work; the breaker keeps the waiting cheap.
 */
export const DEFAULT_RETRY_WINDOW_MS = 72 * 60 * 60 * 1000;

/**
 * While an integration is degraded, one write may probe the remote per this interval: 30 seconds,
 * so a down remote sees at most two probe requests a minute, and a recovered one is noticed soon.
 */
export const DEFAULT_PROBE_INTERVAL_MS = 30_000;

/**
 * Failed remote calls in a row (across the integration's exports, no success in between) that trip
 * the breaker: 10. Low enough that a storm stops within one wave of exports, high enough that a
 * few faults among successful writes (a flaky load balancer) never trip it.
 */
export const DEFAULT_BREAKER_THRESHOLD = 10;

/**
 * Two failures further apart than this do not belong to one streak: a slow trickle of isolated
 * failures (one entity retrying on its own backoff) is not an outage, and the entity's own
 * backoff already bounds its load.
 */
export const BREAKER_FAILURE_GAP_MS = 60_000;

/** Retry windows longer than this are refused: a change nobody delivered for a month needs a human. */
export const MAX_RETRY_WINDOW_MS = 30 * 24 * 60 * 60 * 1000;

/**
 * A waiting export checks at most about this many times in its retry window (between checks it
 * sleeps on a durable timer), so its history stays a few thousand events whatever the window.
 */
export const MAX_CHECKS_PER_WINDOW = 400;

/** What the retry loop needs to know of an integration's settings. */
export interface RetrySettings {
  readonly retryWindowMs: number;
  readonly probeIntervalMs: number;
}

/** The settings used when an execution plan carries none (recorded before they existed). */
export const DEFAULT_RETRY_SETTINGS: RetrySettings = {
  retryWindowMs: DEFAULT_RETRY_WINDOW_MS,
  probeIntervalMs: DEFAULT_PROBE_INTERVAL_MS,
};

/** The longest sleep between two checks of one waiting export: the probe interval, or window / 400. */
export function maxWaitMs(settings: RetrySettings): number {
  return Math.max(settings.probeIntervalMs, Math.ceil(settings.retryWindowMs / MAX_CHECKS_PER_WINDOW));
}

/**
 * The wait before the `round`-th retry (1-based) of a write that failed, or the `round`-th check of
 * a degraded integration: the probe interval doubled each round, capped by `maxWaitMs`, never less
 * than `atLeastMs` (the next probe slot), stretched by up to 25% of `jitter` (0..1) so waiting
 * exports do not all wake at once.
 */
export function retryWaitMs(settings: RetrySettings, round: number, atLeastMs = 0, jitter = 0): number {
  const cap = maxWaitMs(settings);
  const backoff = Math.min(cap, settings.probeIntervalMs * 2 ** Math.min(Math.max(round - 1, 0), 30));
  const base = Math.min(cap, Math.max(backoff, atLeastMs));
  return Math.round(base * (1 + 0.25 * Math.min(Math.max(jitter, 0), 1)));
}

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a duration: a number of milliseconds, or text such as `500ms`, `30s`, `15m`, `24h`, `3d`,
 * `1h30m`. `what` names the setting in the error (`retry window '3x' is not a duration ...`).
 */
export function parseDuration(value: string | number, what = 'duration'): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${what} ${value} is not a positive number of milliseconds`);
    return Math.round(value);
  }
  const text = value.trim().toLowerCase();
  if (/^\d+$/.test(text) && Number(text) > 0) return Number(text);
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)];
  if (text === '' || parts.map((p) => p[0]).join('') !== text) {
    throw new RangeError(`${what} '${value}' is not a duration: use milliseconds or e.g. 30s, 15m, 24h, 3d, 1h30m`);
  }
  const ms = Math.round(parts.reduce((sum, p) => sum + Number(p[1]) * (UNITS[p[2] as string] ?? 0), 0));
  if (ms <= 0) throw new RangeError(`${what} '${value}' must be longer than zero`);
  return ms;
}

/** Formats milliseconds for people: `3d`, `30s`, `1h30m`, `1500ms`. */
export function formatDuration(ms: number): string {
  if (ms < 1000 || ms % 1000 !== 0) return `${ms}ms`;
  let rest = ms;
  let out = '';
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return out;
}
