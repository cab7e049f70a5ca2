/**
 * The `tidesync` command line. Each command is one async function in `commands/`;
 * this file only parses arguments and turns errors into a message and a non-zero exit code.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { devCommand } from './commands/dev';
import { registerBulk, registerExport } from './commands/bulk-cli';
import { integrationListCommand, integrationSetCommand } from './commands/integration';
import { statusCommand } from './commands/status';
import { workerCommand } from './commands/worker';
import { relayCommand } from './commands/relay';
import { outboxCommand } from './commands/outbox';
import { captureInstallCommand, captureRemoveCommand } from './commands/capture';
import { conflictsCommand, resetCommand } from './commands/conflicts';
import { failuresCommand, retryFailedCommand } from './commands/failures';
import { type CodecServerCommandOptions, DEFAULT_UI_ORIGINS, codecServerCommand } from './commands/codec-server';
import { DEFAULT_CODEC_SERVER_PORT } from './codec/codec-server';
import { DEFAULT_UI_PORT } from './stack/temporal-server';
import { TidesyncError } from './errors';
import { CONFIG_ENV } from './config/load-config';
import { installRuntime } from './worker';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`'${value}' is not a non-negative integer`);
  return n;
}

/** Collects a repeated `--origin`, checked and reduced to scheme://host:port as browsers send it. */
function origins(value: string, previous: string[] | undefined): string[] {
  let origin: string;
  try {
    origin = new URL(value).origin;
  } catch {
    throw new InvalidArgumentError(`'${value}' is not a URL such as http://localhost:8233`);
  }
  if (origin === 'null') throw new InvalidArgumentError(`'${value}' has no origin; use http(s)://host[:port]`);
  return [...(previous ?? []), origin];
}

/** Runs an action and exits with its code; errors print their message (and code) only. */
function action<A extends unknown[]>(fn: (...args: A) => Promise<number>) {
  return async (...args: A): Promise<void> => {
    try {
      process.exitCode = await fn(...args);
    } catch (err) {
      const code = err instanceof TidesyncError ? ` [${err.code}]` : '';
      console.error(`tidesync: ${(err as Error).message}${code}`);
      if (process.env['TIDESYNC_DEBUG']) console.error(err);
      process.exitCode = 1;
    }
  };
}

const program = new Command('tidesync')
  .description('durable reverse synchronization: push PostgreSQL entities to remote systems as Temporal workflows')
  .option('--config <file>', `the config file (default: tidesync.config.{ts,mts,cts,mjs,js,cjs} in this folder, or ${CONFIG_ENV})`)
  .showHelpAfterError()
  .hook('preAction', (command, actionCommand) => {
    // Every command loads the config through loadConfig, which reads this variable.
    const file = command.opts<{ config?: string }>().config;
    if (file) process.env[CONFIG_ENV] = file;
    // `worker` installs the SDK runtime itself, with its metrics exporter. The demo makes its CRM fail
    // on purpose: those retries are for the UI, not for warnings on stderr.
    if (actionCommand.name() !== 'worker') {
      installRuntime(process.env['TIDESYNC_LOG_LEVEL'] ? undefined : actionCommand.name() === 'dev' ? 'ERROR' : 'WARN');
    }
  });

program
  .command('dev')
  .description(
    "start the embedded stack (PostgreSQL, Temporal dev server + UI), the worker and a relay for the config, and run the config's dev hook " +
      "(options it does not know go to the hook, e.g. the demo's --contacts N, --no-faults, --integration NAME)",
  )
  .option('--ui-port <port>', 'Temporal Web UI port', positiveInt, DEFAULT_UI_PORT)
  .option('--once', "exit after the config's dev hook finishes instead of running until Ctrl-C", false)
  .option('--json', "print the dev hook's summary as JSON on the last line of stdout", false)
  .allowUnknownOption()
  .allowExcessArguments()
  .action(
    action((opts: { uiPort: number; once: boolean; json: boolean }, command: Command) => devCommand({ ...opts, args: command.args })),
  );

program
  .command('worker')
  .description(
    "run the worker (and an outbox relay) for the config's connectors against its database and Temporal (or a running `tidesync dev`)",
  )
  .option('--no-relay', 'do not run an outbox relay in this process')
  .option('--metrics-port <port>', 'serve Prometheus /metrics and /healthz on this port (or TIDESYNC_METRICS_PORT)', positiveInt)
  .action(action((opts: { relay: boolean; metricsPort?: number }) => workerCommand(opts)));

program
  .command('relay')
  .description('move outbox rows to Temporal (FOR UPDATE SKIP LOCKED: several relays may run side by side)')
  .action(action(() => relayCommand()));

const capture = program.command('capture').description('change capture triggers that fill the outbox without app code');
capture
  .command('install')
  .description("install triggers on the connector's table: inserts, deletes, and updates of watched fields")
  .requiredOption('--integration <name>', 'integration name')
  .requiredOption('--connector <name>', 'connector name')
  .option('--fields <list>', 'comma-separated fields whose change exports (default: the columns the job reads)', (v: string) =>
    v
      .split(',')
      .map((f) => f.trim())
      .filter((f) => f !== ''),
  )
  .action(action((opts: { integration: string; connector: string; fields?: string[] }) => captureInstallCommand(opts)));
capture
  .command('remove')
  .description('remove the capture triggers')
  .requiredOption('--integration <name>', 'integration name')
  .requiredOption('--connector <name>', 'connector name')
  .action(action((opts: { integration: string; connector: string }) => captureRemoveCommand(opts)));

registerExport(program, action);
registerBulk(program, action);

program
  .command('outbox')
  .description("how far behind the outbox is: pending rows, the oldest one's age, and the dispatch rate")
  .option('--json', 'print JSON', false)
  .action(action((opts: { json: boolean }) => outboxCommand(opts)));

program
  .command('status')
  .description(
    "each integration's circuit breaker (healthy or degraded) and rate limiter, then recent job executions (--json: the executions)",
  )
  .option('--json', 'print JSON', false)
  .option('--limit <n>', 'how many', positiveInt, 20)
  .option('--integration <name>', 'only this integration')
  .option('--connector <name>', 'only this connector')
  .option('--entity <id>', "only the runs that exported this entity (composite ids as 'col=value;col=value')")
  .action(
    action((opts: { json: boolean; limit: number; integration?: string; connector?: string; entity?: string }) => statusCommand(opts)),
  );

program
  .command('failures')
  .description(
    'records kept as failed (rejected by the remote, or retried for the whole retry window), with why, when and how many attempts',
  )
  .option('--json', 'print JSON', false)
  .option('--limit <n>', 'how many', positiveInt, 1000)
  .option('--integration <name>', 'only this integration')
  .option('--connector <name>', 'only this connector')
  .action(action((opts: { json: boolean; limit: number; integration?: string; connector?: string }) => failuresCommand(opts)));

program
  .command('retry-failed')
  .description('export failed records again (a success clears failed); waits and prints the outcome of each')
  .option('--integration <name>', 'only this integration')
  .option('--connector <name>', 'only this connector')
  .option('--id <ids...>', 'only these entities (with --integration and --connector; composite ids as col=value;col=value)')
  .option('--json', 'one JSON object per record', false)
  .option('--no-wait', 'start the runs and return')
  .action(
    action((opts: { integration?: string; connector?: string; id?: string[]; json: boolean; wait: boolean }) =>
      retryFailedCommand({
        ...(opts.integration !== undefined ? { integration: opts.integration } : {}),
        ...(opts.connector !== undefined ? { connector: opts.connector } : {}),
        ...(opts.id !== undefined ? { ids: opts.id } : {}),
        json: opts.json,
        wait: opts.wait,
      }),
    ),
  );

program
  .command('conflicts')
  .description('fields changed on both sides, with both values and which side won')
  .option('--json', 'print JSON', false)
  .option('--limit <n>', 'how many', positiveInt, 50)
  .option('--integration <name>', 'only this integration')
  .action(action((opts: { json: boolean; limit: number; integration?: string }) => conflictsCommand(opts)));

program
  .command('reset')
  .description("forget an entity's sync state (e.g. after it was removed on the remote) so it exports again")
  .argument('<integration>', 'integration name')
  .argument('<connector>', 'connector name')
  .argument('<id>', 'entity id (composite: col=value;col=value)')
  .action(action((integration: string, connector: string, id: string) => resetCommand(integration, connector, id)));

program
  .command('codec-server')
  .description("serve the config's payload codec at /encode and /decode for the Temporal Web UI and CLI (--codec-endpoint)")
  .option('--port <port>', 'port to listen on (0: any free port)', positiveInt, DEFAULT_CODEC_SERVER_PORT)
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option(
    '--origin <url>',
    `Web UI origin allowed to call it from a browser; repeatable (default: ${DEFAULT_UI_ORIGINS.join(', ')})`,
    origins,
  )
  .addOption(new Option('--token <token>', 'require Authorization: Bearer <token> on every request').env('TIDESYNC_CODEC_SERVER_TOKEN'))
  .action(
    action((opts: Omit<CodecServerCommandOptions, 'origin'> & { origin?: string[] }) =>
      codecServerCommand({ ...opts, origin: opts.origin ?? DEFAULT_UI_ORIGINS }),
    ),
  );

const integration = program.command('integration').description('configure integrations');
integration
  .command('set')
  .description('create or update an integration')
  .argument('<name>', 'integration name')
  .requiredOption('--type <type>', 'integration type, e.g. demo')
  .option('--transport <json>', 'transport settings as a JSON object (never secrets)')
  .option('--secret-ref <ref>', 'where the secret lives: env:NAME or file:PATH')
  .option('--disabled', 'disable the integration', false)
  .option('--one-way', 'turn two-way sync off', false)
  .addOption(new Option('--priority <side>', 'which side wins conflicts').choices(['local', 'remote']).default('local'))
  .option(
    '--retry-window <duration>',
    'how long transient failures of a change are retried before it is marked failed, e.g. 24h (default 72h)',
  )
  .option('--probe-interval <duration>', 'while the remote is down, one probe write per this interval, e.g. 30s (default 30s)')
  .option('--breaker-threshold <n>', 'failed remote calls in a row that trip the circuit breaker (default 10)')
  .option('--rate-limit <rate>', 'requests the remote allows, across every worker, e.g. 20/s or 600/min (default unlimited)')
  .option('--max-concurrent <n>', 'requests the remote allows in flight at once, across every worker (default unlimited)')
  .action(
    action(
      (
        name: string,
        opts: {
          type: string;
          transport?: string;
          secretRef?: string;
          disabled: boolean;
          oneWay: boolean;
          priority: string;
          retryWindow?: string;
          probeInterval?: string;
          breakerThreshold?: string;
          rateLimit?: string;
          maxConcurrent?: string;
        },
      ) =>
        integrationSetCommand(name, {
          type: opts.type,
          ...(opts.transport ? { transport: opts.transport } : {}),
          ...(opts.secretRef ? { secretRef: opts.secretRef } : {}),
          ...(opts.retryWindow !== undefined ? { retryWindow: opts.retryWindow } : {}),
          ...(opts.probeInterval !== undefined ? { probeInterval: opts.probeInterval } : {}),
          ...(opts.breakerThreshold !== undefined ? { breakerThreshold: opts.breakerThreshold } : {}),
          ...(opts.rateLimit !== undefined ? { rateLimit: opts.rateLimit } : {}),
          ...(opts.maxConcurrent !== undefined ? { maxConcurrent: opts.maxConcurrent } : {}),
          enabled: !opts.disabled,
          twoWay: !opts.oneWay,
          priority: opts.priority,
        }),
    ),
  );
integration
  .command('list')
  .description('list integrations with their retry window, circuit breaker state and rate limits')
  .option('--json', 'print JSON', false)
  .action(action((opts: { json: boolean }) => integrationListCommand(opts)));

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`tidesync: ${(err as Error).message}`);
  process.exitCode = 1;
});
