/**
 * `kubectl exec`, `attach` and `port-forward` on the Docker runtime: a Docker exec or attach on
 * the hijacked connection, split into stdout and stderr with backpressure, and the address a
 * module's ports are reached at.
 */
import { PassThrough, Writable, type Duplex, type Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type DockerClient from 'dockerode';
import { ErrorCode } from '../../common/errors.js';
import { RuntimeError, type ExecRequest, type ModuleSession } from './runtime.js';

/** Docker's stream multiplexing header: stream type, 3 zero bytes, big-endian length. */
const MUX_HEADER_BYTES = 8;
const MUX_STDERR = 2;
/** An exec's exit code shows in its inspect shortly after its stream ends; wait this long at most. */
const EXIT_CODE_WAIT_MS = 2_000;
const EXIT_CODE_POLL_MS = 50;

function dockerText(err: unknown): string {
  const e = err as { json?: { message?: string } | null; message?: string };
  return e.json?.message ?? e.message ?? String(err);
}

function sessionError(action: string, err: unknown): RuntimeError {
  const status = (err as { statusCode?: number }).statusCode;
  return new RuntimeError('StartError', `${action}: ${dockerText(err)}`, {
    terminal: true,
    cause: err,
    code: status === 404 ? ErrorCode.NotFound : ErrorCode.Runtime,
  });
}

/**
 * Splits Docker's multiplexed stream into stdout and stderr, reading no further while either
 * is behind, and ends both when the source ends.
 */
export function demuxInto(source: Readable, stdout: Writable, stderr: Writable): void {
  let pending: Buffer = Buffer.alloc(0);
  let waiting = false;
  const wait = (target: Writable): void => {
    if (waiting) return;
    waiting = true;
    source.pause();
    target.once('drain', () => {
      waiting = false;
      source.resume();
    });
  };
  source.on('data', (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= MUX_HEADER_BYTES) {
      const length = pending.readUInt32BE(4);
      if (pending.length < MUX_HEADER_BYTES + length) break;
      const target = pending[0] === MUX_STDERR ? stderr : stdout;
      const payload = pending.subarray(MUX_HEADER_BYTES, MUX_HEADER_BYTES + length);
      pending = pending.subarray(MUX_HEADER_BYTES + length);
      if (!target.write(payload)) wait(target);
    }
  });
  const end = (): void => {
    stdout.end();
    stderr.end();
  };
  source.on('end', end);
  source.on('close', end);
}

/** Output streams for a hijacked connection: one with a TTY, else demultiplexed. */
function outputs(stream: Duplex, tty: boolean): { stdout: Readable; stderr?: Readable } {
  const stdout = new PassThrough();
  if (tty) {
    stream.pipe(stdout);
    stream.on('close', () => stdout.end());
    return { stdout };
  }
  const stderr = new PassThrough();
  demuxInto(stream, stdout, stderr);
  return { stdout, stderr };
}

/** Settles when both outputs ended. */
function outputsEnded(out: { stdout: Readable; stderr?: Readable }): Promise<void> {
  const ended = (s: Readable): Promise<void> =>
    new Promise((resolve) => {
      if (s.readableEnded || s.destroyed) return resolve();
      s.once('end', resolve);
      s.once('close', resolve);
    });
  return Promise.all([ended(out.stdout), out.stderr && ended(out.stderr)]).then(() => undefined);
}

/** Runs `request.command` in container `id` with `docker exec`. */
export async function dockerExec(
  docker: DockerClient,
  id: string,
  request: ExecRequest,
): Promise<ModuleSession> {
  let exec: DockerClient.Exec;
  let stream: Duplex;
  try {
    exec = await docker.getContainer(id).exec({
      Cmd: request.command,
      AttachStdin: request.stdin,
      AttachStdout: true,
      AttachStderr: true,
      Tty: request.tty,
    });
    stream = await exec.start({ hijack: true, stdin: request.stdin, Tty: request.tty });
  } catch (err) {
    throw sessionError('exec', err);
  }
  const out = outputs(stream, request.tty);
  const exitCode = async (): Promise<number | undefined> => {
    const deadline = Date.now() + EXIT_CODE_WAIT_MS;
    for (;;) {
      const info = (await exec.inspect().catch(() => undefined)) as
        { Running?: boolean; ExitCode?: number | null } | undefined;
      if (!info) return undefined;
      if (!info.Running || Date.now() > deadline) return info.ExitCode ?? undefined;
      await sleep(EXIT_CODE_POLL_MS);
    }
  };
  return {
    ...(request.stdin ? { stdin: stream } : {}),
    ...out,
    resize: async (width, height) => void (await exec.resize({ w: width, h: height })),
    done: outputsEnded(out).then(exitCode),
    kill: () => {
      stream.destroy();
      // Docker has no API to stop an exec: kill its process, which runs on this host.
      void exec
        .inspect()
        .then((info: { Running?: boolean; Pid?: number }) => {
          if (info.Running && info.Pid) process.kill(info.Pid, 'SIGKILL');
        })
        .catch(() => undefined);
    },
  };
}

/** Attaches to container `id`'s own stdin (when it keeps one open) and output. */
export async function dockerAttach(
  docker: DockerClient,
  id: string,
  request: ExecRequest,
): Promise<ModuleSession> {
  const container = docker.getContainer(id);
  let stream: Duplex;
  let tty: boolean;
  try {
    const info = (await container.inspect()) as { Config?: { Tty?: boolean; OpenStdin?: boolean } };
    tty = info.Config?.Tty === true;
    if (request.stdin && !info.Config?.OpenStdin)
      throw new Error('the module does not keep stdin open (set stdin: true on the container)');
    stream = (await container.attach({
      stream: true,
      stdin: request.stdin,
      stdout: true,
      stderr: true,
      hijack: true,
    })) as Duplex;
  } catch (err) {
    throw sessionError('attach', err);
  }
  const out = outputs(stream, tty);
  // The container's stdin outlives one client: the end of this client's input is not passed on
  // (a half-closed attach connection makes dockerd drop the attachment, output still in flight).
  const stdin = new Writable({
    write: (chunk: Buffer, _encoding, done) => void stream.write(chunk, done),
  });
  return {
    ...(request.stdin ? { stdin } : {}),
    ...out,
    resize: async (width, height) => void (await container.resize({ w: width, h: height })),
    done: outputsEnded(out).then(() => undefined),
    kill: () => stream.destroy(),
  };
}

/** Where the device reaches container `id`'s ports: its address on its network, or loopback. */
export async function dockerPortAddress(docker: DockerClient, id: string): Promise<string> {
  const info = (await docker.getContainer(id).inspect()) as {
    HostConfig?: { NetworkMode?: string };
    NetworkSettings?: { IPAddress?: string; Networks?: Record<string, { IPAddress?: string }> };
  };
  if (info.HostConfig?.NetworkMode === 'host') return '127.0.0.1';
  const addresses = [
    ...Object.values(info.NetworkSettings?.Networks ?? {}).map((n) => n.IPAddress),
    info.NetworkSettings?.IPAddress,
  ];
  const address = addresses.find((a): a is string => typeof a === 'string' && a !== '');
  if (!address)
    throw new RuntimeError('StartError', 'the module has no network address to forward to', {
      terminal: true,
    });
  return address;
}
