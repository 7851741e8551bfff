import { composePatch, diffPatch, mergePatch } from './twin-patch.js';

describe('twin patches', () => {
  it('merges with null deletes and diffs back', () => {
    const a = { x: 1, nested: { y: 2, z: 3 }, gone: true };
    const b = mergePatch(a, { nested: { z: null, w: 4 }, gone: null, x: 5 });
    expect(b).toEqual({ x: 5, nested: { y: 2, w: 4 } });
    expect(mergePatch(a, diffPatch(a, b))).toEqual(b);
  });

  it('replaces arrays and leaves its inputs unchanged', () => {
    const twin = { a: { b: 1, c: 2 }, list: [1, 2], keep: 'x' };
    expect(mergePatch(twin, { a: { c: null, d: 3 }, list: [3], gone: null })).toEqual({
      a: { b: 1, d: 3 },
      list: [3],
      keep: 'x',
    });
    expect(twin).toEqual({ a: { b: 1, c: 2 }, list: [1, 2], keep: 'x' });
  });

  it('never takes $ metadata as a property', () => {
    expect(mergePatch({ a: 1 }, { $version: 4, b: 2 })).toEqual({ a: 1, b: 2 });
    expect(composePatch({}, { $version: 4, b: null })).toEqual({ b: null });
  });

  it('composes patches so that applying the result equals applying both', () => {
    const doc = { keep: 1, drop: 2, nested: { a: 1, b: 2 } };
    const first = { drop: null, nested: { a: 10 }, added: 'x' };
    const second = { nested: { b: null }, added: 'y', drop: 3 };
    const composed = composePatch(first, second);
    expect(composed).toEqual({ drop: 3, nested: { a: 10, b: null }, added: 'y' });
    expect(mergePatch(doc, composed)).toEqual(mergePatch(mergePatch(doc, first), second));
  });
});
