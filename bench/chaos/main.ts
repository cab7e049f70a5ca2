/**
 * `npm run chaos [-- --minutes N] [--rate N] [--seed N] [--bulk-contacts N] [--keep]`: the chaos
 * soak (issue 9). Prints its report as one JSON object on the last line of stdout and its progress
 * on stderr; exits 1 when a check fails (lost or duplicated changes, unexpected failed records,
 * remote != local, a bulk export that did not finish or whose counts do not add up).
 * Ctrl-C stops it cleanly (a second Ctrl-C at once), with every process it started.
 */
import { randomInt } from 'node:crypto';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type ChaosOptions, runChaos } from './run';

const log = (line: string): void => void process.stderr.write(`${line}\n`);

function positive(name: string, value: string | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > max) throw new Error(`--${name} '${value}' is not a number from 0 to ${max}`);
  return n;
}

function parseOptions(args: readonly string[]): ChaosOptions {
  const { values } = parseArgs({
    args: [...args],
    options: {
      minutes: { type: 'string' },
      rate: { type: 'string' },
      seed: { type: 'string' },
      'bulk-contacts': { type: 'string' },
      keep: { type: 'boolean' },
    },
    strict: true,
  });
  const minutes = positive('minutes', values.minutes, 3, 600);
  // The outage alone lasts over 30 s and the faults after it need room: below a minute they would pile up.
  if (minutes < 1) throw new Error(`--minutes ${minutes} is too short: the soak needs at least 1`);
  return {
    minutes,
    rate: positive('rate', values.rate, 12, 200),
    seed: values.seed === undefined ? randomInt(2 ** 31) : Math.floor(positive('seed', values.seed, 1, 2 ** 31)),
    keep: values.keep ?? false,
    bulkContacts: Math.floor(positive('bulk-contacts', values['bulk-contacts'], 3000, 50_000)),
  };
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const abort = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (abort.signal.aborted) {
      log(`${signal} again: exiting now (children are signalled on exit)`);
      process.exit(130);
    }
    log(`${signal}: stopping the soak and everything it started`);
    abort.abort(new Error(`interrupted by ${signal}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // .build/bench/chaos/main.js -> the package root, where bin/ and dist/ are.
  const root = path.resolve(__dirname, '..', '..', '..');
  const report = await runChaos(root, options, abort.signal, log);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  const passed = report.lost === 0 && report.duplicates === 0 && report.failedAsExpected && report.remoteMatchesLocal;
  return passed && report.bulkExportsOk ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    log(`chaos soak failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = error instanceof Error && /interrupted by SIG/.test(error.message) ? 130 : 1;
  },
);
