import common from 'azure-iot-common';
import { decodePropertyBag, encodePropertyBag } from './property-bag.js';
import { createSasToken, keyProblem, parseSasToken, resourceUri, verifySasToken } from './sas.js';
import { inputTopic, parseInboundTopic, twinResponseTopic } from './topics.js';

const KEY = Buffer.alloc(32, 7).toString('base64');

describe('SAS tokens', () => {
  const resource = resourceUri('hub.local', 'dev1', 'mod(1)');

  it('creates exactly the token azure-iot-common creates', () => {
    const se = 2_000_000_000;
    const sdk = common.SharedAccessSignature.create(
      common.encodeUriComponentStrict(resource),
      '',
      KEY,
      se,
    ).toString();
    expect(createSasToken({ resource, keyBase64: KEY, expirySecs: se })).toBe(
      sdk.replace('&skn=', ''),
    );
  });

  it('verifies audience, expiry and signature', () => {
    const now = 1_000_000;
    const token = createSasToken({ resource, keyBase64: KEY, expirySecs: now + 60 });
    const ok = { audiences: [resource.toUpperCase()], keysBase64: ['bad', KEY], nowSecs: now };
    expect(verifySasToken(token, ok).resource).toBe(resource);
    expect(() => verifySasToken(token, { ...ok, nowSecs: now + 61 })).toThrow(/expired/);
    expect(() => verifySasToken(token, { ...ok, audiences: ['hub.local/devices/dev2'] })).toThrow(
      /audience/,
    );
    const forged = token.replace(/sig=[^&]+/, 'sig=AAAA');
    expect(() => verifySasToken(forged, ok)).toThrow(/signature/);
    const tampered = createSasToken({ resource, keyBase64: KEY, expirySecs: now + 60 }).replace(
      /se=\d+/,
      `se=${now + 9999}`,
    );
    expect(() => verifySasToken(tampered, ok)).toThrow(/signature/);
    expect(() => parseSasToken('Bearer x')).toThrow(/SharedAccessSignature/);
  });

  it('refuses empty, short and non-base64 keys: a token signed with an empty key never verifies', () => {
    const now = 1_000_000;
    const forged = createSasToken({ resource, keyBase64: '', expirySecs: now + 60 });
    for (const key of ['!!!!', '', Buffer.alloc(8, 1).toString('base64')]) {
      const signed = createSasToken({ resource, keyBase64: key, expirySecs: now + 60 });
      const opts = { audiences: [resource], keysBase64: [key], nowSecs: now };
      expect(() => verifySasToken(forged, opts)).toThrow(/signature/);
      expect(() => verifySasToken(signed, opts)).toThrow(/signature/);
    }
    expect(keyProblem('!!!!')).toBe('the key is not base64');
    expect(keyProblem('AAAA')).toMatch(/decodes to 3 bytes; at least 16/);
    expect(keyProblem(KEY)).toBeUndefined();
  });
});

describe('topics and property bags', () => {
  it('decodes the SDK output topic', () => {
    const t = parseInboundTopic(
      'devices/d1/modules/m1/messages/events/%24.mid=abc&%24.ct=application%2Fjson&%24.ce=utf-8&%24.on=out1&temp=high/',
    );
    expect(t).toEqual({
      kind: 'telemetry',
      deviceId: 'd1',
      moduleId: 'm1',
      properties: new Map([
        ['$.mid', 'abc'],
        ['$.ct', 'application/json'],
        ['$.ce', 'utf-8'],
        ['$.on', 'out1'],
        ['temp', 'high'],
      ]),
    });
    expect(parseInboundTopic('devices/d1/messages/events/')).toMatchObject({ kind: 'telemetry' });
    expect(parseInboundTopic('devices/d1/messages/events/a=1/b=2')).toEqual({ kind: 'unknown' });
    expect(parseInboundTopic('$iothub/twin/GET/?$rid=7')).toEqual({
      kind: 'twinGet',
      requestId: '7',
    });
    expect(parseInboundTopic('$iothub/methods/res/200/?$rid=9')).toEqual({
      kind: 'methodResponse',
      status: 200,
      requestId: '9',
    });
    expect(decodePropertyBag('a=%E0%A4%A&b')).toEqual(
      new Map([
        ['a', '%E0%A4%A'],
        ['b', ''],
      ]),
    );
  });

  it('encodes $ as %24 and keeps the input segment the SDK expects', () => {
    const topic = inputTopic('d1', 'm2', 'in1', [
      ['$.cdid', 'd1'],
      ['$.cmid', 'm1'],
      ['k y', 'v&'],
    ]);
    expect(topic).toBe('devices/d1/modules/m2/inputs/in1/%24.cdid=d1&%24.cmid=m1&k%20y=v%26');
    expect(/^devices\/.*\/modules\/.*\/inputs\/.*\/.*$/.test(topic)).toBe(true);
    expect(encodePropertyBag(decodePropertyBag(topic.split('/')[6]!))).toBe(topic.split('/')[6]);
    expect(twinResponseTopic(204, 'r1', 3)).toBe('$iothub/twin/res/204/?$rid=r1&$version=3');
  });
});
