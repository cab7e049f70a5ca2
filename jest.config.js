/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/src', '<rootDir>/test', '<rootDir>/examples'],
  testMatch: ['**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/', '/.build/'],
  transform: { '^.+\\.ts$': ['@swc/jest'] },
  // Examples import the package by its name, as an application does: here that is the sources.
  moduleNameMapper: { '^tidesync$': '<rootDir>/src/index.ts', '^tidesync/testing$': '<rootDir>/src/testing/index.ts' },
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  // Real servers: one PostgreSQL and one Temporal dev server for the whole run (see test/global-setup.ts).
  testTimeout: 120000,
  maxWorkers: 2,
};
