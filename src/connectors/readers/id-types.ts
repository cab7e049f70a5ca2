/** Checks id values against PostgreSQL column types, so a bad id is refused before it is exported. */

const INTEGER_RANGES: Readonly<Record<string, readonly [bigint, bigint]>> = {
  smallint: [-32768n, 32767n],
  integer: [-2147483648n, 2147483647n],
  bigint: [-9223372036854775808n, 9223372036854775807n],
};
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NUMERIC = /^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$/;

/** Why `value` cannot be a value of a column of `dataType` (information_schema's name), or null. */
export function idValueProblem(value: string | number, dataType: string): string | null {
  const range = INTEGER_RANGES[dataType];
  if (range) {
    const text = typeof value === 'number' ? (Number.isInteger(value) ? String(value) : '') : value.trim();
    if (!/^[+-]?\d+$/.test(text)) return `not an integer`;
    const n = BigInt(text);
    return n < range[0] || n > range[1] ? `out of range for ${dataType}` : null;
  }
  if (dataType === 'numeric' || dataType === 'real' || dataType === 'double precision') {
    return (typeof value === 'number' ? Number.isFinite(value) : NUMERIC.test(value)) ? null : 'not a number';
  }
  if (dataType === 'uuid') return typeof value === 'string' && UUID.test(value) ? null : 'not a uuid';
  if (dataType === 'date' || dataType.startsWith('timestamp')) {
    return Number.isNaN(Date.parse(String(value))) ? `not a ${dataType === 'date' ? 'date' : 'timestamp'}` : null;
  }
  return null;
}
