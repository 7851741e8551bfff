import { checkUsage, MAX_USAGE_MODULES } from './usage.js';

const usage = {
  node: {
    atMs: 1,
    cpuSecs: 2,
    memoryWorkingSetBytes: 3,
    memoryBytes: 4,
    diskAvailableBytes: 5,
    diskBytes: 6,
  },
  modules: [{ name: 'sensor', atMs: 1, cpuSecs: 0.5, memoryWorkingSetBytes: 1000 }],
};

describe('checkUsage', () => {
  it('accepts a well-formed sample', () => {
    expect(checkUsage(usage)).toEqual({ usage });
  });

  it.each([
    ['not an object', 'hello', '(usage) must be object'],
    ['no node', { modules: [] }, "(usage) must have required property 'node'"],
    [
      'a negative CPU time',
      { ...usage, modules: [{ ...usage.modules[0], cpuSecs: -1 }] },
      '/modules/0/cpuSecs must be >= 0',
    ],
    [
      'memory as text',
      { ...usage, node: { ...usage.node, memoryBytes: '4' } },
      '/node/memoryBytes must be number',
    ],
    [
      'too many modules',
      { ...usage, modules: Array.from({ length: MAX_USAGE_MODULES + 1 }, () => usage.modules[0]) },
      '/modules must NOT have more than 1000 items',
    ],
  ])('refuses %s, naming the field', (_what, value, problem) => {
    expect(checkUsage(value)).toEqual({ problem });
  });
});
