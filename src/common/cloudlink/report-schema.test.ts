import { checkReport } from './report-schema.js';

const report = {
  desiredVersion: 3,
  outcome: { status: 'applied' },
  facts: {
    os: 'linux',
    arch: 'amd64',
    cpus: 2,
    memoryBytes: 1e9,
    diskBytes: 1e10,
    containerRuntimeVersion: 'docker://27.0.0',
    agentVersion: '0.1.0',
  },
  modules: [{ name: 'sensor', runtimeStatus: 'running', restartCount: 0 }],
  at: '2026-12-01T00:00:00Z',
};

describe('checkReport', () => {
  it('accepts a well-formed report', () => {
    expect(checkReport(report)).toEqual({ report });
  });

  it.each([
    ['modules not a list', { ...report, modules: 5 }, '/modules must be array'],
    [
      'a module without a status',
      { ...report, modules: [{ name: 'x', restartCount: 0 }] },
      "/modules/0 must have required property 'runtimeStatus'",
    ],
    [
      'an unknown runtime status',
      { ...report, modules: [{ name: 'x', runtimeStatus: 'zombie', restartCount: 0 }] },
      '/modules/0/runtimeStatus must be equal to one of the allowed values',
    ],
    ['no facts', { ...report, facts: undefined }, "(report) must have required property 'facts'"],
    ['a negative version', { ...report, desiredVersion: -1 }, '/desiredVersion must be >= 0'],
    ['not an object', 'hello', '(report) must be object'],
  ])('refuses %s, naming the field', (_what, value, problem) => {
    expect(checkReport(value)).toEqual({ problem });
  });
});
