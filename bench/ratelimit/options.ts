/** The options of `npm run bench -- ratelimit`, parsed with `node:util`'s `parseArgs`; errors name the bad value. */
import { parseArgs } from 'node:util';
import { parseRate } from 'tidesync';

/** What the benchmark runs. */
export interface RateLimitBenchOptions {
  /** The limit of the limited phases, requests per second (`--rate 20` or `20/s`). */
  readonly rate: number;
  /** The tidesync limiter's concurrent requests (`--max-concurrent`). */
  readonly maxConcurrent: number;
  /** How long each phase's workload lasts at the limit, roughly (`--seconds`): the steady window's length at most. */
  readonly seconds: number;
  /** What every request to the demo CRM takes (`--latency-ms`), so requests overlap. */
  readonly latencyMs: number;
}

/** The defaults: the example limit, 20/s with 4 in flight. */
export const RATE_LIMIT_BENCH_DEFAULTS: RateLimitBenchOptions = { rate: 20, maxConcurrent: 4, seconds: 10, latencyMs: 20 };

/** Bounds that keep a run short on a shared machine and its workload meaningful. */
const MAX_RATE = 200;
const MAX_CONCURRENT = 64;
const MAX_SECONDS = 60;
const MAX_LATENCY_MS = 5_000;

/** Reads the options after `ratelimit`. */
export function parseRateLimitOptions(args: readonly string[]): RateLimitBenchOptions {
  const { values } = parseArgs({
    args: [...args],
    options: {
      rate: { type: 'string' },
      'max-concurrent': { type: 'string' },
      seconds: { type: 'string' },
      'latency-ms': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const whole = (name: string, value: string, min: number, max: number): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
      throw new RangeError(`--${name} '${value}' is not a whole number from ${min} to ${max}`);
    }
    return n;
  };
  const rate = values.rate === undefined ? RATE_LIMIT_BENCH_DEFAULTS.rate : parseRate(values.rate, '--rate');
  if (rate < 1 || rate > MAX_RATE) throw new RangeError(`--rate '${values.rate}' must be from 1/s to ${MAX_RATE}/s`);
  const given = (name: 'max-concurrent' | 'seconds' | 'latency-ms', min: number, max: number, fallback: number): number => {
    const value = values[name];
    return value === undefined ? fallback : whole(name, value, min, max);
  };
  return {
    rate,
    maxConcurrent: given('max-concurrent', 1, MAX_CONCURRENT, RATE_LIMIT_BENCH_DEFAULTS.maxConcurrent),
    seconds: given('seconds', 3, MAX_SECONDS, RATE_LIMIT_BENCH_DEFAULTS.seconds),
    latencyMs: given('latency-ms', 0, MAX_LATENCY_MS, RATE_LIMIT_BENCH_DEFAULTS.latencyMs),
  };
}
