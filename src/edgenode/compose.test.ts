import { withModuleAddress } from './compose.js';
import { sdkPortHosts } from './hub/listen.js';

describe('withModuleAddress', () => {
  it('binds loopback when nothing is configured, plus the module network gateway', () => {
    expect(withModuleAddress(undefined, undefined)).toEqual(['127.0.0.1']);
    expect(withModuleAddress(undefined, '172.18.0.1')).toEqual(['127.0.0.1', '172.18.0.1']);
  });

  it('keeps configured addresses, without duplicates, and may drop loopback', () => {
    expect(withModuleAddress('192.168.1.5', '172.18.0.1')).toEqual(['192.168.1.5', '172.18.0.1']);
    expect(withModuleAddress(['172.18.0.1', '10.0.0.2'], '172.18.0.1')).toEqual([
      '172.18.0.1',
      '10.0.0.2',
    ]);
    expect(withModuleAddress([], '172.18.0.1')).toEqual(['172.18.0.1']);
  });

  it('adds nothing to a wildcard, which already covers the module network', () => {
    expect(withModuleAddress('0.0.0.0', '172.18.0.1')).toEqual(['0.0.0.0']);
    expect(withModuleAddress(['::'], '172.18.0.1')).toEqual(['::']);
  });
});

describe('sdkPortHosts', () => {
  it('binds the module network on the SDK port unless the hub already listens there on it', () => {
    expect(sdkPortHosts(undefined, ['127.0.0.1'], 9000, 8883)).toEqual([]);
    expect(sdkPortHosts('172.18.0.1', ['127.0.0.1'], 9000, 8883)).toEqual(['172.18.0.1']);
    expect(sdkPortHosts('172.18.0.1', ['127.0.0.1'], 8883, 8883)).toEqual(['172.18.0.1']);
    expect(sdkPortHosts('172.18.0.1', ['0.0.0.0'], 9000, 8883)).toEqual(['172.18.0.1']);
    expect(sdkPortHosts('172.18.0.1', ['0.0.0.0'], 8883, 8883)).toEqual([]);
    expect(sdkPortHosts('172.18.0.1', ['172.18.0.1'], 443, 443)).toEqual([]);
  });
});
