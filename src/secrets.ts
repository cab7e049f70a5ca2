/**
 * Resolves secret references (`env:NAME`, `file:/path`) inside activities, so secrets never travel
 * through workflow inputs, results, memo, search attributes or ids.
 */
import { readFile } from 'node:fs/promises';
import { ConfigurationError } from './errors';

/** Turns a secret reference into the secret. */
export type SecretResolver = (ref: string) => Promise<string>;

/** Resolves `env:NAME` from `env` (default: the process's environment) and `file:PATH` from a file (trimmed). */
export const resolveSecret = async (ref: string, env: NodeJS.ProcessEnv = process.env): Promise<string> => {
  const colon = ref.indexOf(':');
  const scheme = colon > 0 ? ref.slice(0, colon) : '';
  const target = ref.slice(colon + 1);
  if (scheme === 'env') {
    const value = env[target];
    if (value === undefined || value === '') {
      throw new ConfigurationError(`secret reference '${ref}' names environment variable '${target}', which is not set`);
    }
    return value;
  }
  if (scheme === 'file') {
    try {
      return (await readFile(target, 'utf8')).trim();
    } catch (err) {
      throw new ConfigurationError(`secret reference '${ref}' cannot be read: ${(err as Error).message}`);
    }
  }
  throw new ConfigurationError(`secret reference '${ref}' has an unknown scheme (use env:NAME or file:PATH)`);
};
