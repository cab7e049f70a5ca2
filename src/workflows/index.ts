/**
 * Workflow entry point for the worker's bundle. Export jobs are declared in YAML, so their names
 * are only known at run time: the export workflow is the default export, which Temporal runs for
 * any workflow type that has no function of its own.
 */
import { exportJob } from './export-job';

export { exportJob };
export { changedSignal } from './signals';
export type { ExportInput, ExportResult } from './export-job';
export default exportJob;
