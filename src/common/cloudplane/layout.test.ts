import fc from 'fast-check';
import {
  deviceKey,
  deviceOfSubject,
  parseDeviceKey,
  Subjects,
  token,
  twinKey,
  untoken,
} from './layout.js';

describe('cloud-plane names', () => {
  it('writes any name as one subject token and reads it back', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 64, unit: 'grapheme' }), (name) => {
        const t = token(name);
        expect(t).toMatch(/^[A-Za-z0-9=-]+$/);
        expect(untoken(t)).toBe(name);
      }),
    );
  });

  it('keeps device names with dots to one token, so subjects parse back to the device', () => {
    expect(deviceKey('plant', 'line.1')).toBe('plant.line=2e1');
    expect(parseDeviceKey('plant.line=2e1')).toEqual({ namespace: 'plant', device: 'line.1' });
    expect(deviceOfSubject(Subjects.presence('plant', 'line.1'), 2)).toEqual({
      namespace: 'plant',
      device: 'line.1',
    });
    expect(twinKey('plant', 'd', 'SimulatedTemperatureSensor')).toBe(
      'plant.d.SimulatedTemperatureSensor',
    );
    expect(parseDeviceKey('a.b.c')).toBeUndefined();
  });
});
