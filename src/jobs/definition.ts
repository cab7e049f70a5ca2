/**
 * The shape of job definition files, after Oro's `batch_job.yml`:
 * `jobs.<name>: { title, type: export, steps: { <step>: { title, reader, processor, writer, parameters } } }`.
 */
import { z } from 'zod';

/** Job and step names become Temporal workflow types and ids: keep them plain. */
const NAME = /^[a-z][a-z0-9_]*$/;

const stepSchema = z.strictObject({
  title: z.string().min(1),
  reader: z.string().min(1),
  processor: z.string().min(1),
  writer: z.string().min(1),
  parameters: z.record(z.string(), z.unknown()).default({}),
  /** Write the remote id of created records back into this column of the reader's table. */
  write_back: z.strictObject({ column: z.string().min(1) }).optional(),
});

const jobSchema = z.strictObject({
  title: z.string().min(1),
  type: z.literal('export'),
  steps: z
    .record(z.string().regex(NAME, 'step names are lower_snake_case'), stepSchema)
    .refine((steps) => Object.keys(steps).length > 0, 'a job needs at least one step'),
});

/** Schema of one job definition file. */
export const jobFileSchema = z.strictObject({
  jobs: z.record(z.string().regex(NAME, 'job names are lower_snake_case'), jobSchema),
});

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
