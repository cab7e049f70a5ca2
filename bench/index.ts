/**
 * `npm run bench -- <name> [options]`: runs one benchmark (the words after its name are its
 * options). Each prints exactly one JSON object as the last line of stdout (so scripts can
 * `tail -1`) and its progress on stderr.
 */
import { runBulkBench } from './bulk';
import { runCrmBench } from './crm';
import { runLatencyBench } from './latency';
import { runRateLimitBench } from './ratelimit';

const log = (line: string): void => void process.stderr.write(`${line}\n`);

/** The benchmarks by name. */
const BENCHMARKS: Readonly<Record<string, (args: readonly string[]) => Promise<unknown>>> = {
  bulk: (args) => runBulkBench(log, args),
  crm: () => runCrmBench(log),
  latency: () => runLatencyBench(log),
  ratelimit: (args) => runRateLimitBench(log, args),
};

async function run(): Promise<number> {
  const name = process.argv[2];
  const bench = name === undefined ? undefined : BENCHMARKS[name];
  if (!bench) {
    const known = Object.keys(BENCHMARKS).join(', ');
    log(name === undefined ? `name a benchmark (known: ${known})` : `unknown benchmark '${name}' (known: ${known})`);
    return 2;
  }
  const result = await bench(process.argv.slice(3));
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return 0;
}

run().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    log(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = 1;
  },
);
