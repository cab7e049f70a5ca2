/**
 * What every benchmark and the chaos soak set up first: a folder of their own under tidesync's home
 * (`.tidesync/<name>`), the ledger of the processes they start (leftovers of a killed earlier run
 * are stopped first), an empty `run` folder, and the workflow bundle written once, so every worker
 * they start takes seconds rather than a bundling.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DefaultLogger, bundleWorkflowCode } from '@temporalio/worker';
import { tidesyncHome } from 'tidesync';
import { ProcessLedger } from '../chaos/leftovers';

/** A benchmark's folders and process ledger. */
export interface BenchWorkspace {
  /** `.tidesync/<name>`: kept between runs (the ledger lives here). */
  readonly home: string;
  /** `<home>/run`: emptied at the start of each run. */
  readonly folder: string;
  readonly ledger: ProcessLedger;
}

/** Opens `.tidesync/<name>`, stops what an earlier run left running, and empties its `run` folder. */
export async function openBenchWorkspace(name: string, log: (line: string) => void): Promise<BenchWorkspace> {
  const home = path.join(tidesyncHome(), name);
  await mkdir(home, { recursive: true });
  const ledger = new ProcessLedger(path.join(home, 'processes.json'));
  await ledger.stopLeftovers(log);
  const folder = path.join(home, 'run');
  await rm(folder, { recursive: true, force: true });
  // PostgreSQL runs as the 'postgres' user when we are root: it must be able to enter the folder.
  await mkdir(folder, { recursive: true, mode: 0o755 });
  return { home, folder, ledger };
}

/** Bundles the package's workflows (`<root>/dist/workflows`) into `<folder>/workflow-bundle.js`; returns its path. */
export async function writeWorkflowBundle(root: string, folder: string): Promise<string> {
  const bundle = await bundleWorkflowCode({
    workflowsPath: path.join(root, 'dist', 'workflows', 'index.js'),
    logger: new DefaultLogger('WARN'),
  });
  const file = path.join(folder, 'workflow-bundle.js');
  await writeFile(file, bundle.code);
  return file;
}
