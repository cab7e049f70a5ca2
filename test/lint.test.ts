import { spawnSync } from 'node:child_process';
import path from 'node:path';

// The project's real lint configuration, applied to snippets placed at real paths. ESLint runs in
// one child process because it loads its config with a dynamic import, which jest's VM refuses.
const root = path.resolve(__dirname, '..');
const WORKFLOW = 'src/workflows/export-job.ts';
const ACTIVITY = 'src/activities/secrets.ts';

const snippets = {
  builtins: [WORKFLOW, "import { readFileSync } from 'node:fs';\nimport { Pool } from 'pg';\nexport const x = [readFileSync, Pool];\n"],
  activityValue: [WORKFLOW, "import { createActivities } from '../activities';\nexport const a = createActivities;\n"],
  activityType: [WORKFLOW, "import type { ExportActivities } from '../activities';\nexport type A = ExportActivities;\n"],
  floating: [WORKFLOW, 'async function f(): Promise<void> {}\nexport function g(): void {\n  f();\n}\n'],
  failureConverter: ['src/codec/failure-converter.ts', "import { createHash } from 'node:crypto';\nexport const h = createHash;\n"],
  outside: [ACTIVITY, "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n"],
} as const;

const LINT_SCRIPT = `
const { ESLint } = require('eslint');
(async () => {
  const eslint = new ESLint({ cwd: process.cwd() });
  const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  const out = {};
  for (const [name, [filePath, code]] of Object.entries(input)) {
    const [result] = await eslint.lintText(code, { filePath });
    out[name] = result.messages.map((m) => m.ruleId + ': ' + m.message);
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
`;

describe('lint rules for workflow code', () => {
  let messages: Record<keyof typeof snippets, string[]>;

  beforeAll(() => {
    const run = spawnSync(process.execPath, ['-e', LINT_SCRIPT], { cwd: root, input: JSON.stringify(snippets), encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`eslint failed: ${run.stderr}`);
    messages = JSON.parse(run.stdout) as typeof messages;
  });

  const restricted = (list: string[]) => list.filter((m) => m.startsWith('no-restricted-imports'));

  it('should forbid Node built-ins and I/O libraries in src/workflows', () => {
    expect(restricted(messages.builtins)).toHaveLength(2);
    expect(messages.builtins.join('\n')).toMatch(/workflow code must be deterministic/);
  });

  it("should forbid Node built-ins in the codec's failure converter, which is bundled with the workflows", () => {
    expect(restricted(messages.failureConverter)).toHaveLength(1);
  });

  it('should allow only type imports of activities', () => {
    expect(messages.activityValue.join('\n')).toMatch(/no-restricted-imports: .*only the types of activities/);
    expect(restricted(messages.activityType)).toEqual([]);
  });

  it('should make a floating promise an error', () => {
    expect(messages.floating.join('\n')).toMatch(/@typescript-eslint\/no-floating-promises/);
  });

  it('should allow Node built-ins outside workflows', () => {
    expect(restricted(messages.outside)).toEqual([]);
  });
});
