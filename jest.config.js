/** Jest runs the TypeScript sources as native ESM through swc. */
const transform = {
  '^.+\\.ts$': [
    '@swc/jest',
    {
      jsc: { target: 'es2022', parser: { syntax: 'typescript' } },
      module: { type: 'es6' },
      sourceMaps: 'inline',
    },
  ],
};
const common = {
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform,
  testEnvironment: 'node',
};

export default {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/src/**/*.test.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/**/*.test.ts'],
      globalSetup: '<rootDir>/test/setup/global-setup.mjs',
      slowTestThreshold: 60,
    },
  ],
  testTimeout: 120000,
  // A leaked handle must never hang CI; leaks are hunted with --detectOpenHandles.
  forceExit: true,
  reporters: ['default', '<rootDir>/test/setup/summary-reporter.mjs'],
};
