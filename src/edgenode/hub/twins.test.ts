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

  it('pushes only what a deployment change changed, with null for removed keys', () => {
    const store = new TwinStore(mkdtempSync(path.join(tmpdir(), 'kedge-twin-')));
    store.setDesired('d/m', { threshold: 25, mode: 'fast', limits: { low: 1, high: 9 } });
    expect(store.setDesired('d/m', { threshold: 30, limits: { low: 1, high: 9 } })).toEqual({
      threshold: 30,
      mode: null,
      $version: 3,
    });
    expect(store.setDesired('d/m', { threshold: 30, limits: { low: 2 } })).toEqual({
      limits: { low: 2, high: null },
      $version: 4,
    });
  });

  it('keeps an upstream patch until the deployment changes that key (last writer per key)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kedge-twin-'));
    const store = new TwinStore(dir);
    store.setDesired('d/m', { threshold: 25, mode: 'fast' });
    expect(store.patchDesired('d/m', { threshold: 40, extra: 'x' })).toEqual({
      threshold: 40,
      extra: 'x',
      $version: 3,
    });
    // The deployment changed `mode` only: the patched threshold and extra stay.
    expect(store.setDesired('d/m', { threshold: 25, mode: 'slow' })).toEqual({
      mode: 'slow',
      $version: 4,
    });
    // The same deployment again (any other desired-state change) changes nothing.
    expect(store.setDesired('d/m', { threshold: 25, mode: 'slow' })).toBeUndefined();
    // After a restart, the deployment's own threshold change wins over the earlier patch.
    const reopened = new TwinStore(dir);
    expect(reopened.setDesired('d/m', { threshold: 26, mode: 'slow' })).toEqual({
      threshold: 26,
      $version: 5,
    });
    expect(reopened.document('d/m').desired).toEqual({
      threshold: 26,
      mode: 'slow',
      extra: 'x',
      $version: 5,
    });
  });
});
