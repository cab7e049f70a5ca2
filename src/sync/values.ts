/**
 * Type-aware comparison of field values, so equal values never look changed and changed values
 * never look equal. Oro compares with `==`, which breaks on booleans ("0" == false) and misses
 * changes; tidesync compares by meaning:
 * - null and a missing field are equal; null and "" are not;
 * - a number and a numeric string are compared as exact decimals ("20.50" equals 20.5), but two
 *   strings are compared as strings ("007" is not "7");
 * - a Date and an ISO date-time string (any time zone) are compared as instants, as are two
 *   date-time strings that both carry a zone;
 * - booleans equal only booleans;
 * - objects are compared key by key (missing = null), arrays element by element, in order.
 * Pure code: no I/O, safe anywhere.
 */

/** ISO 8601 date-time with an explicit zone (Z or ±hh:mm), as PostgreSQL and JSON APIs send it. */
const ZONED_DATE_TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)$/i;
/** A plain decimal number as text (no hex, no spaces, no Infinity). */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

function instantOf(value: unknown): number | null {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.getTime();
  if (typeof value === 'string' && ZONED_DATE_TIME.test(value)) {
    const ms = Date.parse(value.replace(' ', 'T'));
    return Number.isNaN(ms) ? null : ms;
  }
  return null;
}

/**
 * The canonical decimal text of a number or numeric string: sign, digits without leading or
 * trailing zeros, and a power of ten, so "1.50", "1.5e0" and 1.5 all give the same text.
 */
export function canonicalDecimal(value: number | string): string | null {
  let text: string;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return null;
    text = String(value);
  } else {
    if (!DECIMAL.test(value)) return null;
    text = value;
  }
  let sign = '';
  if (text.startsWith('-') || text.startsWith('+')) {
    if (text.startsWith('-')) sign = '-';
    text = text.slice(1);
  }
  let exponent = 0;
  const e = text.search(/e/i);
  if (e >= 0) {
    exponent = Number(text.slice(e + 1));
    text = text.slice(0, e);
  }
  const dot = text.indexOf('.');
  let digits = dot >= 0 ? text.slice(0, dot) + text.slice(dot + 1) : text;
  exponent -= dot >= 0 ? text.length - dot - 1 : 0;
  digits = digits.replace(/^0+/, '');
  if (digits === '') return '0';
  const trailing = digits.length - digits.replace(/0+$/, '').length;
  digits = digits.slice(0, digits.length - trailing);
  exponent += trailing;
  return `${sign}${digits}e${exponent}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Date);
}

/** True when `a` and `b` mean the same value (see the rules above). */
export function equalValues(a: unknown, b: unknown): boolean {
  const left = a === undefined ? null : a;
  const right = b === undefined ? null : b;
  if (left === null || right === null) return left === right;

  const leftInstant = instantOf(left);
  const rightInstant = instantOf(right);
  if (leftInstant !== null && rightInstant !== null) return leftInstant === rightInstant;
  if (left instanceof Date || right instanceof Date) return false;

  if (typeof left === 'number' || typeof right === 'number') {
    if (typeof left === 'boolean' || typeof right === 'boolean') return false;
    if ((typeof left !== 'number' && typeof left !== 'string') || (typeof right !== 'number' && typeof right !== 'string')) return false;
    const l = canonicalDecimal(left);
    return l !== null && l === canonicalDecimal(right);
  }
  if (typeof left !== typeof right) return false;
  if (typeof left === 'string' || typeof left === 'boolean') return left === right;
  if (typeof left === 'bigint') return left === right;

  if (Array.isArray(left) || Array.isArray(right)) {
    if (!Array.isArray(left) || !Array.isArray(right) || left.length !== right.length) return false;
    return left.every((item, i) => equalValues(item, right[i]));
  }
  if (isPlainObject(left) && isPlainObject(right)) {
    const keys = new Set([...Object.keys(left), ...Object.keys(right)]);
    for (const key of keys) if (!equalValues(left[key], right[key])) return false;
    return true;
  }
  return false;
}

/** Names of the fields whose values differ between `before` and `after` (missing = null). */
export function changedFields(before: Record<string, unknown> | null, after: Record<string, unknown>): string[] {
  if (!before) return Object.keys(after);
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((key) => !equalValues(before[key], after[key])).sort();
}
