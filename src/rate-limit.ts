/**
 * Rates as people write them (`20/s`, `600/min`, `0.5/s`) and as tidesync stores them (requests
 * per second). Pure code, for the CLI, the client and the status lines.
 */

const PER: Readonly<Record<string, number>> = { s: 1, sec: 1, second: 1, m: 60, min: 60, minute: 60, h: 3600, hour: 3600 };

/**
 * Parses a request rate into requests per second: `20/s`, `20`, `600/min`, `0.5/s`, `3600/h`.
 * `what` names the setting in the error (`--rate-limit '20/d' is not a rate ...`).
 */
export function parseRate(value: string, what = 'rate'): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*([a-z]+))?\s*$/i.exec(value);
  const per = match ? PER[(match[2] ?? 's').toLowerCase()] : undefined;
  if (!match || per === undefined) {
    throw new RangeError(`${what} '${value}' is not a rate: use requests per second or minute or hour, e.g. 20/s, 600/min, 0.5/s`);
  }
  const rate = Number(match[1]) / per;
  if (rate <= 0) throw new RangeError(`${what} '${value}' must be more than zero`);
  return rate;
}

/** A rate for people: `20/s`, `0.5/s`, `unlimited` (null). */
export function formatRate(rate: number | null): string {
  if (rate === null) return 'unlimited';
  return `${Number(rate.toPrecision(3))}/s`;
}
