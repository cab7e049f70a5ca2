/**
 * The command line as an operator runs it against the soak's stack: `node bin/tidesync.js ...`
 * with the worker's environment (the demo config, the soak's database and Temporal, no codec), so
 * what the soak steers through it (a bulk export's pause and resume, the final reconciliation)
 * goes the way a person at a terminal would go.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';

/** What one command printed. */
export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs tidesync commands. */
export class ChaosCli {
  readonly #root: string;
  readonly #env: Readonly<Record<string, string>>;

  /** `root` is the package root (`bin/tidesync.js`); `env` goes on top of ours. */
  constructor(root: string, env: Readonly<Record<string, string>>) {
    this.#root = root;
    this.#env = env;
  }

  /** Runs one command; SIGKILLed after `timeoutMs` (its result then has code null). */
  run(args: readonly string[], timeoutMs = 120_000): Promise<CliResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [path.join(this.#root, 'bin', 'tidesync.js'), ...args], {
        cwd: this.#root,
        env: { ...process.env, ...this.#env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const killOnExit = (): void => void child.kill('SIGKILL');
      process.once('exit', killOnExit);
      child.once('error', reject);
      child.once('close', (code) => {
        clearTimeout(timer);
        process.removeListener('exit', killOnExit);
        resolve({ code, stdout, stderr });
      });
    });
  }

  /** Runs a command with `--json` and parses its last line; throws with its stderr when it failed. */
  async json<T>(args: readonly string[], timeoutMs?: number): Promise<T> {
    const result = await this.run([...args, '--json'], timeoutMs);
    const last = result.stdout.trim().split('\n').pop() ?? '';
    if (result.code !== 0 && !last.startsWith('{')) {
      throw new Error(
        `tidesync ${args.join(' ')} exited ${result.code ?? 'on a timeout'}: ${result.stderr.trim().split('\n').slice(-3).join(' / ')}`,
      );
    }
    return JSON.parse(last) as T;
  }
}
