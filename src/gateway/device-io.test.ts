import { mergePatch } from './device-io.js';

describe('reported twin merge', () => {
  it('merges objects, replaces values and deletes on null, as IoT Hub reported patches do', () => {
    const twin = { a: { b: 1, c: 2 }, list: [1, 2], keep: 'x' };
    expect(mergePatch(twin, { a: { c: null, d: 3 }, list: [3], gone: null })).toEqual({
      a: { b: 1, d: 3 },
      list: [3],
      keep: 'x',
    });
    expect(twin).toEqual({ a: { b: 1, c: 2 }, list: [1, 2], keep: 'x' });
  });
});
