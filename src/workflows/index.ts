/**
 * Workflow entry point for the worker's bundle. Export jobs are declared in YAML, so their names
 * are only known at run time: the export workflow is the default export, which Temporal runs for
 * any workflow type that has no function of its own. The bulk export has a type of its own,
 * `bulkExport` (job names are lower_snake_case, so they never collide with it).
 */
import { exportJob } from './export-job';

export { exportJob };
export { bulkExport } from './bulk-export';
export { streamExport } from './stream-export';
export { changedSignal, streamChangesSignal } from './signals';
export type { ExportInput, ExportResult } from './export-job';
export type { StreamInput, StreamResult } from './stream-export';
export default exportJob;
