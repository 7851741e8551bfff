import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TwinStore } from './twins.js';

describe('twin patches', () => {
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

  it('keeps a service patch until the deployment changes that key (last writer per key)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kedge-twin-'));
    const store = new TwinStore(dir);
    store.setDesired('d/m', { threshold: 25, mode: 'fast' });
    expect(store.setServiceDesired('d/m', { threshold: 40, extra: 'x' })).toEqual({
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

  it('applies the service layer by what changed, deletions included, and only once', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kedge-twin-'));
    const store = new TwinStore(dir);
    store.setDesired('d/m', { threshold: 25, mode: 'fast' });
    store.setServiceDesired('d/m', { extra: 'x' });
    // The composed layer deletes the deployment's `mode` and changes `extra`.
    expect(store.setServiceDesired('d/m', { extra: 'y', mode: null })).toEqual({
      extra: 'y',
      mode: null,
      $version: 4,
    });
    // The same layer again (a reconnect resends it whole) changes nothing, even after a restart.
    expect(store.setServiceDesired('d/m', { extra: 'y', mode: null })).toBeUndefined();
    expect(new TwinStore(dir).setServiceDesired('d/m', { extra: 'y', mode: null })).toBeUndefined();
    expect(new TwinStore(dir).document('d/m').desired).toEqual({
      threshold: 25,
      extra: 'y',
      $version: 4,
    });
  });
});
