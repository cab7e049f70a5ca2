/**
 * The demo CRM in a process of its own for `npm run bench -- crm` and `bulk`, so `process.cpuUsage()` here
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
  // Counted here rather than read from `stats()`, which copies a counter per contact.
  const writes = { count: 0, first: null as number | null, last: null as number | null };
  const onWrite = () => {
    writes.count += 1;
    writes.last = Date.now();
    writes.first ??= writes.last;
  };
  const server = await DemoCrmServer.start({ token, dataFile, onWrite });
  send({ type: 'ready', url: server.url, startMs: performance.now() - began });
  process.on('message', (message: ParentMessage) => {
    if (message.type === 'usage') {
      const compactions = server.storage()?.compactions ?? 0;
      send({
        type: 'usage',
        id: message.id,
        cpu: process.cpuUsage(),
        compactions,
        writes: writes.count,
        firstWriteAt: writes.first,
        lastWriteAt: writes.last,
      });
      return;
    }
    if (message.type === 'wipe') {
      server.wipe();
      Object.assign(writes, { count: 0, first: null, last: null });
      send({ type: 'wiped', id: message.id });
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
