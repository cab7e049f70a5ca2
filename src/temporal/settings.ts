/**
 * What a tidesync configuration file may say about the Temporal server, and its schema. The same
 * things can come from a Temporal profile file or TEMPORAL_* variables: see `./connection.ts`.
 */
import { z } from 'zod';
import { ConfigurationError } from '../errors';

/** TLS files and names, for a server with its own CA or one that requires client certificates. */
export interface TemporalTlsSettings {
  /** The name the server's certificate carries, when it differs from the address's host. */
  readonly serverName?: string;
  /** PEM of the CA that signed the server's certificate; unset = the system's trusted roots. */
  readonly serverCaCertFile?: string;
  /** PEM of the client certificate, for servers that require one (mutual TLS). */
  readonly clientCertFile?: string;
  /** PEM of the client certificate's private key. */
  readonly clientKeyFile?: string;
}

/** The `temporal` settings of a tidesync configuration file. Every field is optional. */
export interface TemporalSettings {
  /** Frontend `host:port`. */
  readonly address?: string;
  /** Namespace; default `default`. */
  readonly namespace?: string;
  /** An API key in clear; prefer {@link TemporalSettings.apiKeyRef}. */
  readonly apiKey?: string;
  /** A secret reference to the API key: `env:NAME` or `file:/path`. */
  readonly apiKeyRef?: string;
  /** `true` for TLS with the system's roots, `false` for plaintext, or the TLS files to use. */
  readonly tls?: boolean | TemporalTlsSettings;
  /** The profile to read from the Temporal config file; default `default`. */
  readonly profile?: string;
  /** A Temporal config file (TOML); default Temporal's own location (`~/.config/temporalio/temporal.toml`). */
  readonly configFile?: string;
}

const nonEmpty = z.string().min(1);

/** Schema of {@link TemporalSettings}: unknown keys are refused, so a misspelt one is not ignored. */
export const temporalSettingsSchema = z
  .strictObject({
    address: nonEmpty.optional(),
    namespace: nonEmpty.optional(),
    apiKey: nonEmpty.optional(),
    apiKeyRef: nonEmpty.optional(),
    tls: z
      .union([
        z.boolean(),
        z.strictObject({
          serverName: nonEmpty.optional(),
          serverCaCertFile: nonEmpty.optional(),
          clientCertFile: nonEmpty.optional(),
          clientKeyFile: nonEmpty.optional(),
        }),
      ])
      .optional(),
    profile: nonEmpty.optional(),
    configFile: nonEmpty.optional(),
  })
  .refine((s) => s.apiKey === undefined || s.apiKeyRef === undefined, {
    message: 'give apiKey or apiKeyRef, not both',
    path: ['apiKeyRef'],
  });

/** Validates settings read from a file; the error names the bad field's path. */
export function parseTemporalSettings(value: unknown): TemporalSettings {
  const parsed = temporalSettingsSchema.safeParse(value);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new ConfigurationError(`temporal settings: ${problems.join('; ')}`);
  }
  return parsed.data as TemporalSettings;
}
