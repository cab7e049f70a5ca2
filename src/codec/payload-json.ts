/**
 * Payloads as the codec server protocol sends them: protobuf JSON of `temporal.api.common.v1.Payloads`,
 * `{ payloads: [{ metadata: { encoding: <base64> }, data: <base64> }] }`.
 */
import type { Payload } from '@temporalio/common';
import { z } from 'zod';

// Protobuf JSON writes bytes as standard base64 and accepts the URL-safe alphabet too.
const base64 = z.string().regex(/^[A-Za-z0-9+/_-]*={0,2}$/, 'expected base64');

const payloadSchema = z.looseObject({
  metadata: z.record(z.string(), base64).nullish(),
  data: base64.nullish(),
});

/** The body of `/encode` and `/decode`: the Payloads message as JSON (`{}` when empty, as proto3 JSON omits empty lists). */
export const payloadsBodySchema = z.looseObject({ payloads: z.array(payloadSchema).default([]) });

/** One payload as JSON. */
export type JsonPayload = z.infer<typeof payloadSchema>;

const bytes = (text: string): Buffer => Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');

/** A payload from its JSON form. */
export function payloadFromJson(json: JsonPayload): Payload {
  return {
    metadata: Object.fromEntries(Object.entries(json.metadata ?? {}).map(([key, value]) => [key, bytes(value)])),
    data: bytes(json.data ?? ''),
  };
}

/** A payload in its JSON form. */
export function payloadToJson(payload: Payload): { metadata: Record<string, string>; data: string } {
  return {
    metadata: Object.fromEntries(
      Object.entries(payload.metadata ?? {}).map(([key, value]) => [key, Buffer.from(value).toString('base64')]),
    ),
    data: Buffer.from(payload.data ?? new Uint8Array()).toString('base64'),
  };
}
