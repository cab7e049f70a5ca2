/**
 * The demo CRM's own model: what a contact is, how incoming bodies are validated, and the API
 * error it answers with. Written by hand rather than with a schema library because the demo
 * remote must produce exact, CRM-like messages (`email "x" is not a valid address`).
 */

/** The editable fields of a demo CRM contact. */
export interface CrmContactFields {
  firstName: string;
  lastName: string;
  email: string;
  phone: string | null;
  company: string | null;
}

/** A stored contact: the fields plus the server-generated id and version. */
export interface CrmContact extends CrmContactFields {
  /** Server generated, `c_1`, `c_2`, ... */
  id: string;
  /** Starts at 1, incremented by every change; sent as `ETag: "<version>"`. */
  version: number;
  /**
   * The client's own id for the contact, unique in the CRM, as HubSpot's `idProperty` or a
   * Salesforce External ID: set by `PUT /contacts/by-key/:externalKey` when it creates the contact,
   * never changed afterwards. Absent (not null) on contacts created without one.
   */
  externalKey?: string;
}

/** The body of every error the demo CRM answers with. */
export interface CrmErrorBody {
  error: { code: string; message: string; field?: string; currentVersion?: number };
}

/**
 * An error the demo CRM answers with; thrown by the store and turned into an HTTP response by
 * the server, so in-process callers (tests) see the same status and code as HTTP callers.
 */
export class CrmApiError extends Error {
  /** The HTTP status to answer with. */
  readonly status: number;
  /** A stable code, e.g. `validation_failed` or `version_conflict`. */
  readonly code: string;
  /** The field at fault, for validation errors. */
  readonly field: string | undefined;
  /** The contact's current version, for version conflicts. */
  readonly currentVersion: number | undefined;

  constructor(status: number, code: string, message: string, extra?: { field?: string; currentVersion?: number }) {
    super(message);
    this.name = 'CrmApiError';
    this.status = status;
    this.code = code;
    this.field = extra?.field;
    this.currentVersion = extra?.currentVersion;
  }

  /** The JSON body the server sends for this error. */
  toBody(): CrmErrorBody {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.field === undefined ? {} : { field: this.field }),
        ...(this.currentVersion === undefined ? {} : { currentVersion: this.currentVersion }),
      },
    };
  }
}

function invalid(field: string, message: string): CrmApiError {
  return new CrmApiError(422, 'validation_failed', message, { field });
}

function describe(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
}

/** Checks one field and returns its normalized value; throws a 422 naming the field. */
function validateField(name: string, value: unknown): string | null {
  switch (name) {
    case 'firstName':
      if (typeof value !== 'string') throw invalid(name, `firstName must be a string, got ${describe(value)}`);
      if (value.trim() === '') throw invalid(name, 'firstName must not be empty');
      return value;
    case 'lastName':
      if (typeof value !== 'string') throw invalid(name, `lastName must be a string, got ${describe(value)}`);
      return value;
    case 'email':
      if (typeof value !== 'string') throw invalid(name, `email must be a string, got ${describe(value)}`);
      if (!value.includes('@')) throw invalid(name, `email "${value}" is not a valid address`);
      return value;
    case 'phone':
    case 'company':
      if (value !== null && typeof value !== 'string') {
        throw invalid(name, `${name} must be a string or null, got ${describe(value)}`);
      }
      return value;
    default:
      // Strict like a real CRM: a typo in a field name must not be silently dropped.
      throw invalid(name, `unknown field "${name}"`);
  }
}

function asObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new CrmApiError(400, 'invalid_body', `request body must be a JSON object, got ${describe(body)}`);
  }
  return body as Record<string, unknown>;
}

/**
 * Validates a partial update (PATCH, or an edit by a remote user): any subset of the fields,
 * each valid on its own, no unknown fields.
 */
export function validatePatch(body: unknown): Partial<CrmContactFields> {
  const input = asObject(body);
  const patch: Record<string, string | null> = {};
  for (const [name, value] of Object.entries(input)) {
    patch[name] = validateField(name, value);
  }
  return patch as Partial<CrmContactFields>;
}

/**
 * Validates a full contact (POST, PUT): `firstName` and `email` are required; `lastName`
 * defaults to `''`, `phone` and `company` to `null`, so a PUT that omits them clears them.
 */
export function validateFields(body: unknown): CrmContactFields {
  const patch = validatePatch(body);
  if (patch.firstName === undefined) throw invalid('firstName', 'firstName is required');
  if (patch.email === undefined) throw invalid('email', 'email is required');
  return {
    firstName: patch.firstName,
    lastName: patch.lastName ?? '',
    email: patch.email,
    phone: patch.phone ?? null,
    company: patch.company ?? null,
  };
}
