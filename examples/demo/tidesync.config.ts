/**
 * The demo application's tidesync config: its contact connector, processor, writer and job, and
 * what `tidesync dev` runs once the stack is up (seed contacts, start the demo CRM, export them).
 */
import { defineConfig } from 'tidesync';
import { demoDeclarations } from './index';
import { runDemo, setupDemoTables } from './run-demo';

export default defineConfig({ ...demoDeclarations, dev: { setup: setupDemoTables, run: runDemo } });
