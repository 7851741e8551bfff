import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { ErrorCode, KedgeError } from '../../common/errors.js';
import { edgeAgentMethods, type EdgeAgentPort } from './edge-agent-methods.js';
import type { LogOptions } from './types.js';

const LOGS: Record<string, string> = {
  SimulatedTemperatureSensor: [
    '2026-12-02T10:00:00.000000000Z <6> sent 1',
    '2026-12-02T10:00:01.000000000Z <4> warning: slow',
    '2026-12-02T10:00:02.000000000Z sent 2',
    '2026-12-02T10:00:03.000000000Z sent 3',
  ].join('\n'),
  filter: '2026-12-02T10:00:00.000000000Z forwarded 1\n',
};

function fakeAgent() {
  const restarted: string[] = [];
  const asked: LogOptions[] = [];
  const agent: EdgeAgentPort = {
    restartModule: (name) => {
      if (!(name in LOGS))
        return Promise.reject(new KedgeError(ErrorCode.NotFound, `module ${name} is not deployed`));
      restarted.push(name);
      return Promise.resolve();
    },
    logs: (module, options) => {
      asked.push(options);
      return Promise.resolve(Readable.from([Buffer.from(LOGS[module]!)]));
    },
    moduleNames: () => Object.keys(LOGS),
  };
  return { call: edgeAgentMethods(agent), restarted, asked };
}

describe('$edgeAgent methods', () => {
  it('answers ping with 200 and no payload', async () => {
    expect(await fakeAgent().call('ping', null)).toEqual({ status: 200, payload: null });
  });

  it('restarts a module by id and says 404 for one not deployed', async () => {
    const { call, restarted } = fakeAgent();
    expect(await call('RestartModule', { schemaVersion: '1.0', id: 'filter' })).toEqual({
      status: 200,
      payload: null,
    });
    expect(restarted).toEqual(['filter']);
    expect(await call('RestartModule', { schemaVersion: '1.0', id: 'nope' })).toEqual({
      status: 404,
      payload: { message: 'module nope is not deployed' },
    });
  });

  it('refuses malformed payloads with 400 naming the field, and unknown methods with 501', async () => {
    const { call } = fakeAgent();
    expect(await call('RestartModule', { schemaVersion: '1.0' })).toMatchObject({
      status: 400,
      payload: { message: 'RestartModule: "id" names the module' },
    });
    expect(await call('RestartModule', { schemaVersion: '2.0', id: 'filter' })).toMatchObject({
      status: 400,
    });
    expect(
      await call('GetModuleLogs', { items: [{ id: 'filter', filter: { since: 'yesterday' } }] }),
    ).toMatchObject({
      status: 400,
      payload: { message: expect.stringMatching(/items\[0\]\.filter\.since/) },
    });
    expect(await call('GetModuleLogs', { items: [{ id: '(' }] })).toMatchObject({ status: 400 });
    expect(await call('UploadModuleLogs', {})).toMatchObject({ status: 501 });
  });

  it('returns logs per matching module with tail, regex, loglevel and until filters', async () => {
    const { call, asked } = fakeAgent();
    const text = await call('GetModuleLogs', {
      schemaVersion: '1.0',
      items: [{ id: 'Simulated.*', filter: { tail: 2, regex: 'sent' } }],
      encoding: 'none',
      contentType: 'text',
    });
    expect(text).toEqual({
      status: 200,
      payload: [{ id: 'SimulatedTemperatureSensor', payload: 'sent 2\nsent 3' }],
    });
    expect(asked[0]).toEqual({ timestamps: true });
    const level = await call('GetModuleLogs', {
      items: [{ id: 'SimulatedTemperatureSensor', filter: { loglevel: 4 } }],
    });
    expect(level.payload).toEqual([{ id: 'SimulatedTemperatureSensor', payload: 'warning: slow' }]);
    const until = await call('GetModuleLogs', {
      items: [{ id: 'Sim.*', filter: { until: '2026-12-02T10:00:01Z', since: 1_700_000_000 } }],
      contentType: 'json',
      encoding: 'gzip',
    });
    const [packed] = until.payload as { id: string; payloadBytes: string }[];
    expect(JSON.parse(gunzipSync(Buffer.from(packed!.payloadBytes, 'base64')).toString())).toEqual([
      {
        moduleId: 'SimulatedTemperatureSensor',
        timeStamp: '2026-12-02T10:00:00.000000000Z',
        logLevel: 6,
        text: 'sent 1',
      },
      {
        moduleId: 'SimulatedTemperatureSensor',
        timeStamp: '2026-12-02T10:00:01.000000000Z',
        logLevel: 4,
        text: 'warning: slow',
      },
    ]);
    expect(asked[2]!.since).toEqual(new Date(1_700_000_000_000));
  });
});
