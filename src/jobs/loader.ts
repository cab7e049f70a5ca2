/** Loads job definition files (YAML), validates them, and checks they name registered services. */
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigurationError } from '../errors';
import { isEntityByIdReader } from '../connectors/readers/entity-by-id-reader';
import { type JobDefinition, jobFileSchemaFor } from './definition';
import type { ServiceRegistry, ServiceRole } from './service-registry';

/** Formats a zod issue path as `jobs.demo_contact_export.steps.export.reader`, as written in the file. */
function issuePath(issue: z.core.$ZodIssue): string {
  return issue.path.map((p) => String(p)).join('.') || '(root)';
}

/** Parses and validates one file's text. Errors name the file, the field's path and the problem. */
export function parseJobFile(text: string, source: string): JobDefinition[] {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigurationError(`${source}: invalid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
  }
  const file: unknown = doc.toJS();
  const parsed = jobFileSchemaFor(file).safeParse(file);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issuePath(issue)}: ${issue.message}`);
    throw new ConfigurationError(`${source}: ${problems.join('; ')}`);
  }
  return Object.entries(parsed.data).map(([name, job]) => ({
    name,
    title: job.title,
    type: job.type,
    source,
    steps: Object.entries(job.steps).map(([stepName, step]) => ({ name: stepName, ...step })),
  }));
}

/** Loads every `*.yaml`/`*.yml` file of the given folders; a job name may be declared only once. */
export async function loadJobs(dirs: readonly string[]): Promise<Map<string, JobDefinition>> {
  const jobs = new Map<string, JobDefinition>();
  for (const dir of dirs) {
    let files: string[];
    try {
      files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
    } catch (err) {
      throw new ConfigurationError(`job definitions folder '${dir}' cannot be read: ${(err as Error).message}`);
    }
    for (const file of files) {
      const source = path.join(dir, file);
      for (const job of parseJobFile(await readFile(source, 'utf8'), source)) {
        const earlier = jobs.get(job.name);
        if (earlier) throw new ConfigurationError(`${source}: job '${job.name}' is already declared in ${earlier.source}`);
        jobs.set(job.name, job);
      }
    }
  }
  return jobs;
}

/**
 * Checks that every step names registered services (`builtinReaders` count as registered: they
 * are bound to the database later). Touches no server.
 */
export function checkJobServices(jobs: Iterable<JobDefinition>, services: ServiceRegistry, builtinReaders: readonly string[] = []): void {
  for (const job of jobs) {
    for (const step of job.steps) {
      for (const role of ['reader', 'processor', 'writer'] as const satisfies readonly ServiceRole[]) {
        if (services.has(role, step[role]) || (role === 'reader' && builtinReaders.includes(step[role]))) continue;
        const known = [...services.names(role), ...(role === 'reader' ? builtinReaders : [])].sort();
        throw new ConfigurationError(
          `${job.source}: jobs.${job.name}.steps.${step.name}.${role}: unknown ${role} '${step[role]}' (known: ${known.join(', ') || 'none'})`,
        );
      }
    }
  }
}

/**
 * Checks that every step names registered services, and lets each reader check its parameters
 * against the database (tables and columns exist). Run once when the worker starts.
 */
export async function prepareJobs(jobs: Iterable<JobDefinition>, services: ServiceRegistry): Promise<void> {
  const list = [...jobs];
  checkJobServices(list, services);
  for (const job of list) {
    for (const step of job.steps) {
      try {
        const columns = step.parameters['columns'];
        // A write-back column must exist in the reader's table too: the reader checks it with the rest.
        const parameters =
          step.writeBack && Array.isArray(columns) ? { ...step.parameters, columns: [...columns, step.writeBack.column] } : step.parameters;
        if (step.writeBack && !isEntityByIdReader(step.reader)) {
          throw new ConfigurationError(`write_back needs the entity.by_id reader (it writes into the reader's table)`);
        }
        await services.get('reader', step.reader).prepare(parameters);
      } catch (err) {
        // Oro-style steps (`parameters: ~`) take their table from the connector: say so.
        const hint =
          isEntityByIdReader(step.reader) && step.parameters['table'] === undefined
            ? ' (set it in the step, or as the entity of the connector that exports with this job)'
            : '';
        throw new ConfigurationError(`${job.source}: jobs.${job.name}.steps.${step.name}.parameters: ${(err as Error).message}${hint}`, {
          cause: err,
        });
      }
    }
  }
}
