/** The demo integration: a contact connector, its processor and writer, and its job folder. */
import path from 'node:path';
import type { TidesyncConfig } from 'tidesync';
import { DemoContactConnector } from './contact-connector';
import { DemoContactProcessor } from './contact-processor';
import { DemoContactWriter } from './contact-writer';

export { DEMO_INTEGRATION_TYPE } from './contact-connector';

/** The job definitions of the demo (`demo_contact_export`). */
export const DEMO_JOBS_DIR = path.join(__dirname, 'jobs');

/** What the demo declares: spread it into a config (`tidesync.config.ts` does). */
export const demoDeclarations = {
  connectors: [new DemoContactConnector()],
  processors: { 'demo.contact_processor': new DemoContactProcessor() },
  writers: { 'demo.contact_writer': new DemoContactWriter() },
  jobs: [DEMO_JOBS_DIR],
} satisfies TidesyncConfig;
