/**
 * Opens what `kubectl exec`, `attach` and `port-forward` ask of a running module instance, on
 * whichever runtime runs it.
 */
import { connect } from 'node:net';
import type { StreamOpen } from '../../common/cloudlink/streams.js';
import { ErrorCode, KedgeError } from '../../common/errors.js';
import type { ModuleRuntime, ModuleSession } from './runtime.js';

/** A module port that does not accept the connection in this long is reported unreachable. */
const CONNECT_TIMEOUT_MS = 10_000;

function unsupported(runtime: ModuleRuntime, what: string, hint: string): KedgeError {
  return new KedgeError(
    ErrorCode.InvalidInput,
    `${what} is not supported by the ${runtime.name} runtime${hint}`,
  );
}

/** Opens a session with instance `id`. @throws KedgeError or RuntimeError saying why not. */
export async function openModuleSession(
  runtime: ModuleRuntime,
  id: string,
  open: StreamOpen,
): Promise<ModuleSession> {
  const request = {
    command: open.command ?? [],
    stdin: open.stdin === true,
    tty: open.tty === true,
  };
  switch (open.kind) {
    case 'exec':
      if (!runtime.exec) throw unsupported(runtime, 'exec', '');
      if (request.command.length === 0)
        throw new KedgeError(ErrorCode.InvalidInput, 'exec needs a command');
      return runtime.exec(id, request);
    case 'attach':
      if (!runtime.attach)
        throw unsupported(
          runtime,
          'attach',
          ": a module's output goes to its log (kubectl logs -f)",
        );
      return runtime.attach(id, request);
    case 'portforward':
      if (!runtime.portAddress) throw unsupported(runtime, 'port-forward', '');
      return connectPort(await runtime.portAddress(id), open.port ?? 0);
  }
}

/** A TCP connection to the module's port, as a session: input and output are the socket. */
function connectPort(host: string, port: number): Promise<ModuleSession> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, timeout: CONNECT_TIMEOUT_MS });
    const fail = (message: string): void => {
      socket.destroy();
      reject(new KedgeError(ErrorCode.Unavailable, `dial tcp ${host}:${port}: ${message}`));
    };
    socket.once('timeout', () => fail('connection timed out'));
    socket.once('error', (err: NodeJS.ErrnoException) =>
      fail(err.code === 'ECONNREFUSED' ? 'connection refused' : err.message),
    );
    socket.once('connect', () => {
      socket.setTimeout(0);
      socket.removeAllListeners('error');
      socket.removeAllListeners('timeout');
      socket.on('error', () => socket.destroy());
      resolve({
        stdin: socket,
        stdout: socket,
        done: new Promise((r) => socket.once('close', () => r(undefined))),
        kill: () => socket.destroy(),
      });
    });
  });
}
