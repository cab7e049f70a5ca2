/**
 * Fault injection for the demo CRM: tests and the demo queue failures that the next matching
 * `/contacts` requests receive instead of being applied, so every error path of a writer can be
 * exercised against a real HTTP service.
 */
import { z } from 'zod';
import { CrmApiError } from './crm-contact';

/** Default delay of a `slow` fault: longer than the client's default 10 s timeout, so it times out. */
const DEFAULT_SLOW_DELAY_MS = 15_000;

const faultSpecSchema = z
  .strictObject({
    kind: z.enum(['5xx', '429', 'slow', '422', 'reset', 'item-422']),
    count: z.number().int().positive().optional(),
    status: z.number().int().min(500).max(599).optional(),
    retryAfterSeconds: z.number().nonnegative().optional(),
    delayMs: z.number().int().nonnegative().optional(),
    method: z.string().min(1).optional(),
    path: z.string().startsWith('/').optional(),
    message: z.string().min(1).optional(),
    apply: z.boolean().optional(),
    match: z.string().min(1).optional(),
  })
  .refine((spec) => spec.kind === 'item-422' || spec.match === undefined, {
    message: 'match applies only to item-422 faults',
    path: ['match'],
  })
  .refine((spec) => spec.kind !== 'item-422' || (spec.method === undefined && spec.path === undefined), {
    message: 'an item-422 fault matches batch items by key or email, not by method or path',
    path: ['kind'],
  });

/**
 * What to inject, as posted to `POST /_control/faults`.
 * - `5xx`: answer `status` (default 503).
 * - `429`: answer 429 with `Retry-After: retryAfterSeconds` (default 1).
 * - `422`: answer a validation error with `message`.
 * - `slow`: wait `delayMs` (default 15000), then answer 504 without applying; with `apply: true`
 *   handle the request normally after the wait (the "timed out, but it was written" case).
 * - `reset`: close the socket without answering.
 * - `item-422`: fail one item of a `POST /contacts/batch` with a 422 and `message`, leaving the
 *   other items alone: the next `count` items whose key or email equals `match` (any item when
 *   `match` is omitted). The request faults above apply to a whole batch request.
 */
export type FaultSpec = z.infer<typeof faultSpecSchema>;

/** The kinds of fault the demo CRM can inject. */
export type FaultKind = FaultSpec['kind'];

/** A queued fault with its defaults filled in. */
export interface Fault {
  readonly kind: FaultKind;
  /** How many more matching requests will receive this fault. */
  remaining: number;
  readonly status: number;
  readonly retryAfterSeconds: number;
  readonly delayMs: number;
  /** Only requests with this method (upper case) match; `null` matches all. */
  readonly method: string | null;
  /** Only requests whose path starts with this match; `null` matches all. */
  readonly path: string | null;
  readonly message: string;
  readonly apply: boolean;
  /** For `item-422`: the item key or email that matches; `null` matches every item. */
  readonly match: string | null;
}

/** Validates a fault spec from an untrusted body; throws a 422 naming the bad field. */
export function parseFaultSpec(body: unknown): FaultSpec {
  const result = faultSpecSchema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue?.path.map(String).join('.') || '(body)';
  throw new CrmApiError(422, 'invalid_fault', `invalid fault ${field}: ${issue?.message ?? 'unknown problem'}`, {
    field,
  });
}

/** The queue of pending faults, consumed in order by matching requests. */
export class FaultQueue {
  readonly #faults: Fault[] = [];

  /** Queues a fault and returns it with its defaults filled in. */
  add(spec: FaultSpec): Fault {
    const fault: Fault = {
      kind: spec.kind,
      remaining: spec.count ?? 1,
      status: spec.status ?? 503,
      retryAfterSeconds: spec.retryAfterSeconds ?? 1,
      delayMs: spec.delayMs ?? DEFAULT_SLOW_DELAY_MS,
      method: spec.method?.toUpperCase() ?? null,
      path: spec.path ?? null,
      message: spec.message ?? defaultMessage(spec.kind),
      apply: spec.apply ?? false,
      match: spec.match ?? null,
    };
    this.#faults.push(fault);
    return { ...fault };
  }

  /** Drops every pending fault. */
  clear(): void {
    this.#faults.length = 0;
  }

  /** The pending faults, oldest first (copies). */
  list(): Fault[] {
    return this.#faults.map((fault) => ({ ...fault }));
  }

  /** Consumes one use of the oldest request fault matching the request, if any. */
  take(method: string, path: string): Fault | undefined {
    return this.#consume(
      (fault) =>
        fault.kind !== 'item-422' &&
        (fault.method === null || fault.method === method.toUpperCase()) &&
        (fault.path === null || path.startsWith(fault.path)),
    );
  }

  /** Consumes one use of the oldest `item-422` fault matching a batch item's key or email, if any. */
  takeItem(key: string, email: unknown): Fault | undefined {
    return this.#consume((fault) => fault.kind === 'item-422' && (fault.match === null || fault.match === key || fault.match === email));
  }

  #consume(matches: (fault: Fault) => boolean): Fault | undefined {
    const index = this.#faults.findIndex(matches);
    const fault = this.#faults[index];
    if (!fault) return undefined;
    fault.remaining -= 1;
    if (fault.remaining <= 0) this.#faults.splice(index, 1);
    return { ...fault };
  }
}

function defaultMessage(kind: FaultKind): string {
  switch (kind) {
    case '5xx':
      return 'injected server error';
    case '429':
      return 'injected rate limit: too many requests';
    case '422':
      return 'injected validation failure';
    case 'slow':
      return 'injected slow response: the request was not applied';
    case 'reset':
      return 'injected connection reset';
    case 'item-422':
      return 'injected validation failure of this item';
  }
}
