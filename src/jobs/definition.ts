/**
 * The shape of job definition files, after Oro's `batch_job.yml`. A file is one of
 * - `jobs: { <job>: ... }` (tidesync's own),
 * - `<job>: ...` at the top level (Oro's `batch_job.yml`, copied as it is),
 * - `connector: { name, jobs: { <job>: ... } }` (Akeneo's `batch_jobs.yml`);
 * a job is `{ title, type: export, steps: { <step>: ... } }`, and a step names its services either
 * flat (`reader`, `processor`, `writer`) or nested under `services`, as Oro does.
 */
import { z } from 'zod';

/** Job and step names become Temporal workflow types and ids: keep them plain. */
const NAME = /^[a-z][a-z0-9_]*$/;

/**
 * The step classes tidesync accepts. Every step runs as an item step (read, process, write), so
 * only that class can be named: Oro's, Akeneo's (Oro's batch bundle is a fork of it), or short.
 */
export const ITEM_STEP_CLASSES: readonly string[] = [
  'Oro\\Bundle\\BatchBundle\\Step\\ItemStep',
  'Akeneo\\Bundle\\BatchBundle\\Step\\ItemStep',
  'ItemStep',
  'item',
];

const ROLES = ['reader', 'processor', 'writer'] as const;

const serviceName = z.string().min(1);

const stepClassSchema = z.string().superRefine((value, ctx) => {
  if (!ITEM_STEP_CLASSES.includes(value)) {
    ctx.addIssue({
      code: 'custom',
      message: `unsupported step class '${value}': only the item step is supported (${ITEM_STEP_CLASSES.join(', ')})`,
    });
  }
});

const stepSchema = z
  .strictObject({
    title: z.string().min(1),
    class: stepClassSchema.optional(),
    /** Oro's nesting of the three services; the alternative to `reader`, `processor`, `writer`. */
    services: z.strictObject({ reader: serviceName, processor: serviceName, writer: serviceName }).optional(),
    reader: serviceName.optional(),
    processor: serviceName.optional(),
    writer: serviceName.optional(),
    /** `parameters: ~` (Oro's way of saying none) is an empty mapping. */
    parameters: z
      .record(z.string(), z.unknown())
      .nullish()
      .transform((parameters) => parameters ?? {}),
    /** Write the remote id of created records back into this column of the reader's table. */
    write_back: z.strictObject({ column: z.string().min(1) }).optional(),
  })
  .transform((step, ctx) => {
    const flat = ROLES.filter((role) => step[role] !== undefined);
    if (step.services && flat.length > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['services'],
        message: `name the services once, either under services or as reader, processor and writer on the step, not both (also on the step: ${flat.join(', ')})`,
      });
      return z.NEVER;
    }
    if (!step.services && flat.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['services'],
        message: 'required: services { reader, processor, writer }, or reader, processor and writer on the step',
      });
      return z.NEVER;
    }
    const services = step.services ?? { reader: step.reader, processor: step.processor, writer: step.writer };
    const missing = ROLES.filter((role) => services[role] === undefined);
    for (const role of missing) {
      ctx.addIssue({
        code: 'custom',
        path: [role],
        message: `required: a step that names its services on the step needs reader, processor and writer (it names ${flat.join(' and ')})`,
      });
    }
    const { reader, processor, writer } = services;
    if (reader === undefined || processor === undefined || writer === undefined) return z.NEVER;
    return { title: step.title, reader, processor, writer, parameters: step.parameters, writeBack: step.write_back ?? null };
  });

const jobSchema = z.strictObject({
  title: z.string().min(1),
  type: z.literal('export'),
  steps: z
    .record(z.string().regex(NAME, 'step names are lower_snake_case'), stepSchema)
    .refine((steps) => Object.keys(steps).length > 0, 'a job needs at least one step'),
});

const jobsSchema = z.record(z.string().regex(NAME, 'job names are lower_snake_case'), jobSchema, {
  error: (issue) =>
    issue.code === 'invalid_type'
      ? 'a job file is a mapping: jobs: { <job>: ... }, <job>: ... at the top level, or connector: { name, jobs: { <job>: ... } }'
      : undefined,
});

/** A validated job file: its jobs by name, steps normalised to one shape. */
export type JobFile = Readonly<Record<string, z.output<typeof jobSchema>>>;

const wrappedFileSchema = z.strictObject({ jobs: jobsSchema }).transform((file): JobFile => file.jobs);
const connectorFileSchema = z
  .strictObject({ connector: z.strictObject({ name: z.string().min(1), jobs: jobsSchema }) })
  .transform((file): JobFile => file.connector.jobs);

/**
 * The schema of a job file, chosen by its top-level keys: `jobs` for tidesync's shape, `connector`
 * for Akeneo's, otherwise a top-level mapping of job names (Oro's). Choosing first, rather than
 * trying each shape in turn, keeps each error's path pointing at the field as written in the file.
 */
export function jobFileSchemaFor(file: unknown): z.ZodType<JobFile> {
  const isMapping = typeof file === 'object' && file !== null && !Array.isArray(file);
  if (isMapping && 'connector' in file) return connectorFileSchema;
  if (isMapping && 'jobs' in file) return wrappedFileSchema;
  return jobsSchema;
}

/** One step of a job: reader -> processor -> writer. */
export interface StepDefinition {
  readonly name: string;
  readonly title: string;
  readonly reader: string;
  readonly processor: string;
  readonly writer: string;
  readonly parameters: Readonly<Record<string, unknown>>;
  /** Column of the reader's table that receives the remote id after a create. */
  readonly writeBack: { readonly column: string } | null;
}

/** A named, declared export job; its name is the Temporal workflow type. */
export interface JobDefinition {
  readonly name: string;
  readonly title: string;
  readonly type: 'export';
  /** Steps in the order they were declared; they run in that order. */
  readonly steps: readonly StepDefinition[];
  /** The file the job was declared in, for error messages. */
  readonly source: string;
}
