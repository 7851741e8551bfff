import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { diffPatch, mergePatch, TwinStore } from './twins.js';

describe('twin patches', () => {
  it('merges with null deletes and diffs back', () => {
    const a = { x: 1, nested: { y: 2, z: 3 }, gone: true };
    const b = mergePatch(a, { nested: { z: null, w: 4 }, gone: null, x: 5 });
    expect(b).toEqual({ x: 5, nested: { y: 2, w: 4 } });
    expect(mergePatch(a, diffPatch(a, b))).toEqual(b);
  });

  it('versions desired and reported independently and persists them', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kedge-twin-'));
    const store = new TwinStore(dir);
    expect(store.setDesired('d/m', { threshold: 25 })).toEqual({ threshold: 25, $version: 2 });
    expect(store.setDesired('d/m', { threshold: 25 })).toBeUndefined();
    expect(store.patchReported('d/m', { ok: true })).toBe(2);
    expect(() => store.patchReported('d/m', [1])).toThrow(/JSON object/);
    expect(new TwinStore(dir).document('d/m')).toEqual({
      desired: { threshold: 25, $version: 2 },
      reported: { ok: true, $version: 2 },
    });
  });
});
