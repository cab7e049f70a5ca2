/** Starts the benchmark's demo CRM in a child process (`server.ts`) and talks to it over IPC. */
import { type ChildProcess, fork } from 'node:child_process';
import path from 'node:path';

/** What the parent asks the server process. */
export type ParentMessage = { type: 'usage'; id: number } | { type: 'wipe'; id: number } | { type: 'stop' };

/** What the server process answers. */
export type RemoteMessage =
  | { type: 'ready'; url: string; startMs: number }
  | {
      type: 'usage';
      id: number;
      cpu: NodeJS.CpuUsage;
      compactions: number;
      writes: number;
      firstWriteAt: number | null;
      lastWriteAt: number | null;
    }
  | { type: 'wiped'; id: number }
  | { type: 'stopped'; stopMs: number };

/** What the server process has done so far. */
export interface RemoteSample {
  readonly cpu: NodeJS.CpuUsage;
  readonly compactions: number;
  /** Creates, updates and deletes applied since the start or the last `wipe()`. */
  readonly writes: number;
  /** When the first and the last of them were applied (`Date.now()`, comparable across processes), or null. */
  readonly firstWriteAt: number | null;
  readonly lastWriteAt: number | null;
}

/** A demo CRM running in its own process. */
export interface RemoteCrm {
  readonly url: string;
  /** How long opening the store (reading the snapshot, replaying the journal) and listening took. */
  readonly startMs: number;
  /** The server process's CPU time so far (`process.cpuUsage()`, microseconds) and its compactions. */
  sample(): Promise<RemoteSample>;
  /** Removes every contact and idempotency record, and starts counting writes from zero. */
  wipe(): Promise<void>;
  /** Stops it cleanly (the journal is compacted) and resolves with how long stopping took, in ms. */
  stop(): Promise<number>;
  /** Ends the process at once; for cleanup after a failure. */
  kill(): void;
}

/** Starts the demo CRM on `dataFile` in a child process; resolves once it listens. */
export async function startRemoteCrm(dataFile: string, token: string): Promise<RemoteCrm> {
  const child = fork(path.join(__dirname, 'server.js'), [dataFile], {
    env: { ...process.env, BENCH_CRM_TOKEN: token },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = await next(child, 'ready');
  // Asked for while batches are in flight, several at once: answers are matched by id.
  let requests = 0;
  return {
    url: ready.url,
    startMs: ready.startMs,
    sample: async () => {
      const id = (requests += 1);
      const answer = next(child, 'usage', (message) => message.id === id);
      child.send({ type: 'usage', id } satisfies ParentMessage);
      const { cpu, compactions, writes, firstWriteAt, lastWriteAt } = await answer;
      return { cpu, compactions, writes, firstWriteAt, lastWriteAt };
    },
    wipe: async () => {
      const id = (requests += 1);
      const answer = next(child, 'wiped', (message) => message.id === id);
      child.send({ type: 'wipe', id } satisfies ParentMessage);
      await answer;
    },
    stop: async () => {
      const answer = next(child, 'stopped');
      child.send({ type: 'stop' } satisfies ParentMessage);
      const { stopMs } = await answer;
      await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(undefined)));
      return stopMs;
    },
    kill: () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/** The next message of `type` (that `accept` takes) from the child; rejects if it exits first. */
function next<T extends RemoteMessage['type']>(
  child: ChildProcess,
  type: T,
  accept: (message: Extract<RemoteMessage, { type: T }>) => boolean = () => true,
): Promise<Extract<RemoteMessage, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: RemoteMessage) => {
      if (message.type !== type || !accept(message as Extract<RemoteMessage, { type: T }>)) return;
      child.off('message', onMessage).off('exit', onExit);
      resolve(message as Extract<RemoteMessage, { type: T }>);
    };
    const onExit = (code: number | null) => {
      child.off('message', onMessage);
      reject(new Error(`bench crm server exited with code ${code} while we waited for '${type}'`));
    };
    child.on('message', onMessage).once('exit', onExit);
  });
}
