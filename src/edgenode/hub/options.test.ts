import { Ajv } from 'ajv';
import { HUB_DEFAULTS, hubOptionsSchema, resolveHubOptions } from './options.js';

describe('hub options', () => {
  const validate = new Ajv({ allErrors: true }).compile(hubOptionsSchema);

  it('accepts the defaults and the IoT Edge route forms', () => {
    const options = {
      ...HUB_DEFAULTS,
      deviceId: 'edge1',
      dataDir: '/var/lib/kedge',
      routes: {
        a: 'FROM /messages/* INTO $upstream',
        b: { route: 'FROM /messages/* INTO $upstream', priority: 1, timeToLiveSecs: 60 },
      },
    };
    expect(validate(options)).toBe(true);
  });

  it('names the bad key', () => {
    expect(validate({ deviceId: 'e', dataDir: '/d', limits: { maxMessageByte: 1 } })).toBe(false);
    expect(validate.errors?.[0]?.params).toEqual({ additionalProperty: 'maxMessageByte' });
    expect(
      validate({ deviceId: 'e', dataDir: '/d', routes: { r: { route: 'x', priority: 12 } } }),
    ).toBe(false);
  });

  it('fills nested defaults without touching the defaults object', () => {
    const o = resolveHubOptions({ deviceId: 'e', dataDir: '/d', limits: { maxProperties: 8 } });
    expect(o.limits).toEqual({ ...HUB_DEFAULTS.limits, maxProperties: 8 });
    expect(o.workloadSocket).toBe('/d/workload.sock');
    expect(HUB_DEFAULTS.limits.maxProperties).toBe(64);
  });
});
