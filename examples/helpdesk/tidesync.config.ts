/** The help desk application's tidesync config: found by `npx tidesync worker` in this folder. */
import { defineConfig } from 'tidesync';
import { TicketConnector } from './ticket-connector';
import { TicketProcessor } from './ticket-processor';
import { TicketWriter } from './ticket-writer';

export default defineConfig({
  connectors: [new TicketConnector()],
  processors: { 'helpdesk.ticket_processor': new TicketProcessor() },
  writers: { 'helpdesk.ticket_writer': new TicketWriter() },
  jobs: ['./jobs'],
});
