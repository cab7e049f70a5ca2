/**
 * The demo CRM in a process of its own for `npm run bench -- crm`, so `process.cpuUsage()` here
 * is the server's alone. Started by `remote.ts` with the data file as its argument and the token in
 * `BENCH_CRM_TOKEN`; it talks over the IPC channel (see `RemoteMessage`).
 */
import { performance } from 'node:perf_hooks';
import { DemoCrmServer } from '../../examples/demo/remote/crm-server';
import type { ParentMessage, RemoteMessage } from './remote';

function send(message: RemoteMessage): void {
  process.send?.(message);
}

async function run(): Promise<void> {
  const dataFile = process.argv[2];
  const token = process.env['BENCH_CRM_TOKEN'];
  if (!dataFile || !token) throw new Error('bench crm server needs a data file argument and BENCH_CRM_TOKEN');
  const began = performance.now();
  const server = await DemoCrmServer.start({ token, dataFile });
  send({ type: 'ready', url: server.url, startMs: performance.now() - began });
  process.on('message', (message: ParentMessage) => {
    if (message.type === 'usage') {
      send({ type: 'usage', id: message.id, cpu: process.cpuUsage(), compactions: server.storage()?.compactions ?? 0 });
      return;
    }
    const stopping = performance.now();
    server.stop().then(
      () => {
        send({ type: 'stopped', stopMs: performance.now() - stopping });
        process.disconnect();
      },
      (error: unknown) => {
        process.stderr.write(`bench crm server failed to stop: ${String(error)}\n`);
        process.exit(1);
      },
    );
  });
}

run().catch((error: unknown) => {
  process.stderr.write(`bench crm server failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
