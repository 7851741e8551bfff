import { PassThrough } from 'node:stream';
import {
  Channel,
  decodeStreamFrame,
  encodeStreamFrame,
  STREAM_SILENCE_LIMIT_MS,
  STREAM_WINDOW_BYTES,
  StreamKind,
  type StreamOpen,
} from '../../common/cloudlink/streams.js';
import { silentLogger } from '../../common/logger.js';
import type { ModuleSession } from '../agent/runtime.js';
import { DeviceSessions } from './sessions.js';

/** A module session a test drives: input it got, output it writes, an exit it decides. */
function fakeModule(): ModuleSession & {
  stdout: PassThrough;
  input: string[];
  exit(code: number): void;
  killed: boolean;
} {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  let exit: (code: number) => void = () => undefined;
  const m = {
    input: [] as string[],
    killed: false,
    stdin,
    stdout,
    done: new Promise<number | undefined>((r) => (exit = r)),
    kill: () => {
      m.killed = true;
      exit(137);
    },
    exit: (code: number) => {
      stdout.end();
      exit(code);
    },
  };
  stdin.on('data', (c: Buffer) => m.input.push(c.toString()));
  return m;
}

const open: StreamOpen = { kind: 'exec', module: 'm', command: ['sh'], stdin: true };
const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 5));

describe('device sessions', () => {
  it('keeps input that arrives while the module session opens, then bridges both ways', async () => {
    const sent: Buffer[] = [];
    const module = fakeModule();
    let release: () => void = () => undefined;
    const opening = new Promise<void>((r) => (release = r));
    const sessions = new DeviceSessions(
      (f) => sent.push(f),
      async () => {
        await opening;
        return module;
      },
      silentLogger(),
    );
    sessions.receive(encodeStreamFrame(StreamKind.open, 's1', open));
    sessions.receive(
      encodeStreamFrame(StreamKind.data, 's1', Buffer.from('early\n'), Channel.stdin),
    );
    release();
    await tick();
    expect(module.input).toEqual(['early\n']);
    module.stdout.write('out\n');
    module.exit(3);
    await tick();
    const frames = sent.map((f) => decodeStreamFrame(f)!);
    expect(frames.map((f) => [f.kind, f.payload.toString()])).toEqual([
      [StreamKind.data, 'out\n'],
      [StreamKind.close, '{"exitCode":3}'],
    ]);
    expect(sessions.size).toBe(0);
  });

  it('reads no more of a module than the window until the cloud acknowledges', async () => {
    const sent: Buffer[] = [];
    const module = fakeModule();
    const sessions = new DeviceSessions(
      (f) => sent.push(f),
      () => Promise.resolve(module),
      silentLogger(),
    );
    sessions.receive(encodeStreamFrame(StreamKind.open, 's1', open));
    await tick();
    // The module offers 4 MiB at once; what leaves is bounded by the window.
    const chunk = Buffer.alloc(64 * 1024);
    for (let i = 0; i < 64; i++) module.stdout.write(chunk);
    await tick();
    const sentBytes = (): number =>
      sent.map((f) => decodeStreamFrame(f)!).reduce((n, f) => n + f.payload.length, 0);
    const first = sentBytes();
    expect(first).toBeGreaterThanOrEqual(STREAM_WINDOW_BYTES);
    expect(first).toBeLessThanOrEqual(STREAM_WINDOW_BYTES + chunk.length);
    sessions.receive(encodeStreamFrame(StreamKind.ack, 's1', { bytes: first }));
    await tick();
    expect(sentBytes()).toBeGreaterThan(first);
    expect(sentBytes()).toBeLessThanOrEqual(first + STREAM_WINDOW_BYTES + chunk.length);
    sessions.closeAll();
  });

  it('says why a session cannot open', async () => {
    const sent: Buffer[] = [];
    const sessions = new DeviceSessions(
      (f) => sent.push(f),
      () => Promise.reject(new Error('module m has no running instance')),
      silentLogger(),
    );
    sessions.receive(encodeStreamFrame(StreamKind.open, 's1', open));
    await tick();
    expect(JSON.parse(decodeStreamFrame(sent[0]!)!.payload.toString())).toEqual({
      error: 'module m has no running instance',
    });
  });

  it('kills the module session when the cloud closes it, goes silent, or the link drops', async () => {
    let nowMs = 0;
    const modules = [fakeModule(), fakeModule(), fakeModule()];
    const sessions = new DeviceSessions(
      () => undefined,
      () => Promise.resolve(modules.shift()!),
      silentLogger(),
      () => nowMs,
    );
    const [a, b, c] = modules;
    for (const id of ['a', 'b', 'c'])
      sessions.receive(encodeStreamFrame(StreamKind.open, id, open));
    await tick();
    sessions.receive(encodeStreamFrame(StreamKind.close, 'a', { error: 'client hung up' }));
    expect(a!.killed).toBe(true);
    nowMs = STREAM_SILENCE_LIMIT_MS - 1;
    sessions.receive(encodeStreamFrame(StreamKind.ack, 'c', { bytes: 0 }));
    nowMs = STREAM_SILENCE_LIMIT_MS + 1;
    sessions.endSilent();
    expect([b!.killed, c!.killed]).toEqual([true, false]);
    sessions.closeAll();
    expect(c!.killed).toBe(true);
    expect(sessions.size).toBe(0);
  });
});
