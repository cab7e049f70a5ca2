/**
 * Local resources the embedded servers need: free TCP ports, and child processes that must not
 * outlive us (a dev server left behind keeps its port and, for PostgreSQL, locks its data folder).
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';

/**
 * A TCP port that was free a moment ago on `host`. Another process may take it before the server
 * binds it, so callers that chose the port this way retry on "address already in use".
 */
export async function getFreePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error(`could not read the port of a probe socket on ${host}`));
      });
    });
  });
}

/** Whether `port` can be bound on `host` right now. */
export async function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Whether `host:port` accepts TCP connections now: a cheap probe before a real client connects. */
export async function isListening(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Whether a process with this pid runs. EPERM means it runs under another user. A zombie (exited
 * but not reaped, as under a container init that never reaps orphans) counts as gone.
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true; // no /proc (macOS): trust kill(0)
  }
}

/** Children to signal when this process exits, with the signal each one shuts down on by itself. */
const trackedChildren = new Map<ChildProcess, NodeJS.Signals>();

function signalTrackedChildren(): void {
  for (const [child, signal] of trackedChildren) {
    // 'exit' handlers must be synchronous: send the signal and let the child finish on its own.
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  }
}

/**
 * Makes `child` die with us: on process exit (normal end, `process.exit`, uncaught error) it is
 * sent `exitSignal`. Death by a signal skips 'exit' (hence `onShutdown` in dev-stack.ts), and a
 * SIGKILL cannot be caught at all: the next start stops such orphans via their owner files.
 */
export function trackChild(child: ChildProcess, exitSignal: NodeJS.Signals): void {
  if (trackedChildren.size === 0) process.on('exit', signalTrackedChildren);
  trackedChildren.set(child, exitSignal);
  child.once('exit', () => {
    trackedChildren.delete(child);
    if (trackedChildren.size === 0) process.removeListener('exit', signalTrackedChildren);
  });
}

/** Resolves with true once `child` has exited, or with false after `timeoutMs`. */
export async function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  return new Promise((resolve) => {
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      child.removeListener('exit', onExit);
      resolve(false);
    }, timeoutMs);
    child.once('exit', onExit);
  });
}

/**
 * Stops `child`: each `[signal, graceMs]` step in turn until it exits (the first is the server's
 * clean shutdown), then SIGKILL as a last resort. Resolves once the process is gone.
 */
export async function stopChild(child: ChildProcess, steps: ReadonlyArray<readonly [NodeJS.Signals, number]>): Promise<void> {
  for (const [signal, graceMs] of steps) {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    if (await waitForExit(child, graceMs)) return;
  }
  child.kill('SIGKILL');
  await waitForExit(child, 5_000);
}

/**
 * Stops a process that is not our child (an orphan of a killed run): each `[signal, graceMs]` step
 * in turn, then SIGKILL unless `kill` is false. Resolves whether it is gone.
 */
export async function stopPid(
  pid: number,
  steps: ReadonlyArray<readonly [NodeJS.Signals, number]>,
  options: { readonly kill?: boolean } = {},
): Promise<boolean> {
  const signals: ReadonlyArray<readonly [NodeJS.Signals, number]> = options.kill === false ? steps : [...steps, ['SIGKILL', 5_000]];
  for (const [signal, graceMs] of signals) {
    try {
      process.kill(pid, signal);
    } catch {
      return true; // exited on its own meanwhile
    }
    // Not our child, so no 'exit' event: poll.
    for (const deadline = Date.now() + graceMs; Date.now() < deadline;) {
      if (!isProcessAlive(pid)) return true;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return !isProcessAlive(pid);
}
