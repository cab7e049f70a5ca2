/** Durations in configuration and on the command line: `500ms`, `30s`, `10m`, `24h`, `7d`, or milliseconds. */
import { ConfigurationError } from '../errors';

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses a duration into milliseconds; `what` names the setting in the error. */
export function parseDuration(value: string | number, what: string): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return value;
  } else {
    const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(value);
    if (match) return Math.round(Number(match[1]) * (UNITS[match[2] as string] as number));
  }
  throw new ConfigurationError(`${what} ${JSON.stringify(value)} is not a duration: use e.g. 500ms, 30s, 10m, 24h, 7d`);
}
