/**
 * The demo application's tidesync config: its contact connector, processor, writer and job, and
 * what `tidesync dev` runs once the stack is up (seed contacts, start the demo CRM, export them).
 * With `TIDESYNC_CODEC_KEY` set (32 bytes: `openssl rand -base64 32`), what the exports write into
 * Temporal's history is encrypted, and the Web UI of `tidesync dev` decodes it through a codec server.
 */
import { defineConfig } from 'tidesync';
import { demoDeclarations } from './index';
import { runDemo, setupDemoTables } from './run-demo';

const codec = process.env['TIDESYNC_CODEC_KEY'] ? { keys: [{ id: 'demo', ref: 'env:TIDESYNC_CODEC_KEY' }] } : undefined;

export default defineConfig({ ...demoDeclarations, ...(codec ? { codec } : {}), dev: { setup: setupDemoTables, run: runDemo } });
