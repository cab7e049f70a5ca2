/**
 * Reading a workflow's history as the Temporal server keeps it: fetched through a client without
 * any codec, as plain JSON (payload bytes in base64), with every string also read as base64 so
 * that text hidden in payload bytes shows up in a search.
 */
import type { Client } from '@temporalio/client';

/** One payload of a raw history, as protobuf JSON, and where it sits. */
export interface RawPayload {
  readonly path: string;
  readonly json: { metadata: Record<string, string>; data?: string };
  /** The `encoding` metadata, decoded. */
  readonly encoding: string;
  /** The `encryption-key-id` metadata, decoded, when present. */
  readonly keyId: string | undefined;
}

/** A history as stored: its JSON text, its payloads, and its text for searching. */
export interface RawHistory {
  readonly json: string;
  /** Bytes of the protobuf encoding, what the server stores. */
  readonly protoBytes: number;
  readonly payloads: readonly RawPayload[];
  /** The JSON text plus every string in it decoded from base64. */
  readonly haystack: string;
}

const fromBase64 = (text: string): string => Buffer.from(text, 'base64').toString('latin1');

function walk(node: unknown, path: string, visit: (node: unknown, path: string) => void): void {
  visit(node, path);
  if (Array.isArray(node)) node.forEach((item, i) => walk(item, `${path}[${i}]`, visit));
  else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) walk(value, path ? `${path}.${key}` : key, visit);
  }
}

/** Every payload and every string of a JSON tree (a history, or a codec server's answer). */
export function scan(tree: unknown): { payloads: RawPayload[]; haystack: string } {
  const payloads: RawPayload[] = [];
  const strings: string[] = [];
  walk(tree, '', (node, path) => {
    if (typeof node === 'string') strings.push(node, fromBase64(node));
    if (node === null || typeof node !== 'object') return;
    const metadata = (node as { metadata?: Record<string, string> }).metadata;
    if (metadata && typeof metadata === 'object' && typeof metadata['encoding'] === 'string') {
      const keyId = metadata['encryption-key-id'];
      payloads.push({
        path,
        json: node as RawPayload['json'],
        encoding: fromBase64(metadata['encoding']),
        keyId: keyId === undefined ? undefined : fromBase64(keyId),
      });
    }
  });
  return { payloads, haystack: `${JSON.stringify(tree)}\n${strings.join('\n')}` };
}

/** Fetches a run's history through `client` (which must have no codec) and scans it. */
export async function rawHistory(client: Client, workflowId: string, runId: string): Promise<RawHistory> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  const json = JSON.stringify(history);
  const { temporal } = await import('@temporalio/proto');
  const protoBytes = temporal.api.history.v1.History.encode(history).finish().length;
  return { json, protoBytes, ...scan(JSON.parse(json) as unknown) };
}
