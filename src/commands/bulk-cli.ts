/**
 * The command-line shape of bulk exports and their schedules: `export --all`'s options, `bulk ...`
 * and `schedule ...`. `cli.ts` hands over its program and its way of running an action.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { BulkMode } from '../activities/bulk-types';
import { DEFAULT_BULK_PAGE_SIZE, DEFAULT_BULK_PARALLELISM, MIN_FITTED_BULK_PAGE_SIZE } from '../workflows/options';
import { bulkControlCommand, bulkExportCommand, bulkListCommand } from './bulk';
import { exportCommand } from './export';
import { scheduleListCommand, scheduleRemoveCommand, scheduleSetCommand, scheduleTriggerCommand } from './schedule';

/** Runs an action and sets the exit code (cli.ts's `action`). */
type Action = <A extends unknown[]>(fn: (...args: A) => Promise<number>) => (...args: A) => Promise<void>;

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`'${value}' is not a positive integer`);
  return n;
}

const modeOption = () =>
  new Option('--mode <mode>', 'changed: write only rows that changed since their last export; all: write every row again')
    .choices(['changed', 'all'])
    .default('changed');

interface ExportOptions {
  all?: boolean;
  mode: BulkMode;
  filter?: string;
  pageSize?: number;
  parallelism?: number;
  json: boolean;
  wait: boolean;
}

/** `tidesync export <integration> <connector> [ids...] [--all ...]`. */
export function registerExport(program: Command, action: Action): void {
  program
    .command('export')
    .description(
      'export entities now: one run per id, waiting for each; or --all: one bulk export of every row (or a filter) with a progress bar',
    )
    .argument('<integration>', 'integration name, e.g. demo')
    .argument('<connector>', 'connector name, e.g. contact')
    .argument('[ids...]', 'entity ids; composite ids as col=value;col=value')
    .option('--all', 'export every row of the connector (or those of --filter) as one bulk export')
    .addOption(modeOption())
    .option('--filter <name>', 'with --all: only the rows of a filter declared in the job (filters: { name: sql })')
    .option(
      '--page-size <n>',
      `with --all: rows per page, one activity each (default: fitted to the rows, ${MIN_FITTED_BULK_PAGE_SIZE} to ${DEFAULT_BULK_PAGE_SIZE})`,
      positive,
    )
    .option('--parallelism <n>', `with --all: pages in flight at once (default ${DEFAULT_BULK_PARALLELISM})`, positive)
    .option('--json', 'JSON output (one object per id; with --all, a summary)', false)
    .option('--no-wait', 'start and return')
    .action(
      action(async (integration: string, connector: string, ids: string[], opts: ExportOptions) => {
        if (!opts.all) {
          const bulkOnly = [
            opts.filter !== undefined && '--filter',
            opts.pageSize !== undefined && '--page-size',
            opts.parallelism !== undefined && '--parallelism',
            opts.mode !== 'changed' && '--mode',
          ].filter(Boolean);
          if (bulkOnly.length > 0)
            throw new InvalidArgumentError(`${bulkOnly.join(', ')} ${bulkOnly.length === 1 ? 'needs' : 'need'} --all`);
          if (ids.length === 0) throw new InvalidArgumentError('give the ids to export, or --all for every row');
          return exportCommand(integration, connector, ids, opts);
        }
        if (ids.length > 0) throw new InvalidArgumentError(`--all exports every row: give ids or --all, not both (got ${ids.join(' ')})`);
        return bulkExportCommand(integration, connector, {
          mode: opts.mode,
          wait: opts.wait,
          json: opts.json,
          ...(opts.filter !== undefined ? { filter: opts.filter } : {}),
          ...(opts.pageSize !== undefined ? { pageSize: opts.pageSize } : {}),
          ...(opts.parallelism !== undefined ? { parallelism: opts.parallelism } : {}),
        });
      }),
    );
}

/** `tidesync bulk list|status|pause|resume|cancel` and `tidesync schedule set|list|remove|trigger`. */
export function registerBulk(program: Command, action: Action): void {
  const bulk = program.command('bulk').description('bulk exports: list them, see their progress, pause, resume or cancel one');
  bulk
    .command('list')
    .description('bulk exports, newest first, with their status')
    .option('--integration <name>', 'only this integration')
    .option('--running', 'only those still running', false)
    .option('--limit <n>', 'how many', positive, 50)
    .option('--json', 'print JSON', false)
    .action(action((opts: { integration?: string; running: boolean; limit: number; json: boolean }) => bulkListCommand(opts)));
  for (const [name, description] of [
    ['status', 'where a bulk export stands: rows done of total, written, skipped, failed, rate and ETA'],
    ['pause', 'stop starting pages; those in flight finish, then it waits (holding no worker slot)'],
    ['resume', 'start pages again after a pause'],
    ['cancel', 'stop for good after the pages in flight; its execution record keeps what was done'],
  ] as const) {
    const command = bulk
      .command(name)
      .description(description)
      .argument('<id>', 'the workflow id, bulk/<integration>/<connector>/...')
      .option('--json', 'print JSON', false);
    if (name === 'cancel') command.option('--reason <text>', 'why, kept in the execution record');
    command.action(action((id: string, opts: { json: boolean; reason?: string }) => bulkControlCommand(name, id, opts)));
  }

  const schedule = program
    .command('schedule')
    .description("recurring reconciliation: a Temporal Schedule running a connector's bulk export");
  schedule
    .command('set')
    .description('create or replace the schedule of a connector (runs in changed mode unless --mode all)')
    .argument('<integration>', 'integration name')
    .argument('<connector>', 'connector name')
    .option('--every <interval>', 'run every interval, e.g. 15m, 1h, 1d')
    .option('--cron <expr>', "run on a cron expression (UTC), e.g. '0 3 * * *'")
    .addOption(modeOption())
    .option('--filter <name>', 'only the rows of a filter declared in the job')
    .option('--page-size <n>', 'rows per page', positive)
    .option('--parallelism <n>', 'pages in flight at once', positive)
    .option('--json', 'print JSON', false)
    .action(
      action(
        (
          integration: string,
          connector: string,
          opts: { every?: string; cron?: string; mode: BulkMode; filter?: string; pageSize?: number; parallelism?: number; json: boolean },
        ) => scheduleSetCommand(integration, connector, opts),
      ),
    );
  schedule
    .command('list')
    .description('the reconciliation schedules, with their next run')
    .option('--json', 'print JSON', false)
    .action(action((opts: { json: boolean }) => scheduleListCommand(opts)));
  schedule
    .command('remove')
    .description("remove a connector's schedule")
    .argument('<integration>', 'integration name')
    .argument('<connector>', 'connector name')
    .action(action((integration: string, connector: string) => scheduleRemoveCommand(integration, connector)));
  schedule
    .command('trigger')
    .description("run a connector's reconciliation now (skipped while one runs)")
    .argument('<integration>', 'integration name')
    .argument('<connector>', 'connector name')
    .action(action((integration: string, connector: string) => scheduleTriggerCommand(integration, connector)));
}
