/**
 * How much entity data one record may put into Temporal's history. Temporal warns at 512 KB per
 * payload and refuses 2 MB (the default blob size limit): a payload past it fails the activity
 * again on every retry, so a too-large record would block its export for good. A record larger
 * than this is failed, with its size, instead of being sent through history at all.
 */
export const MAX_RECORD_BYTES = 256 * 1024;

/** The size of `value` as JSON, in bytes (what it weighs in a payload, before any codec). */
export function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');
}

/** The failure message of a record past {@link MAX_RECORD_BYTES}. */
export function tooLargeMessage(what: 'entity' | 'changeset', key: string, bytes: number): string {
  return (
    `${what} ${key} is ${bytes} bytes as JSON, more than the ${MAX_RECORD_BYTES} bytes one record may carry through ` +
    `Temporal's history; it was not exported (shrink the columns the job reads or the processor's output)`
  );
}
