/**
 * Direct methods: a request goes to the target client on `$iothub/methods/POST/{name}/?$rid=`,
 * and its answer on `$iothub/methods/res/{status}/?$rid=` resolves the call, or the timeout fires.
 */
import { ErrorCode, KedgeError } from '../../common/errors.js';

/** A method result as IoT Hub returns it. */
export interface MethodResult {
  status: number;
  payload: unknown;
}

interface Pending {
  clientId: string;
  resolve: (r: MethodResult) => void;
  timer: NodeJS.Timeout;
}

export class MethodCalls {
  #pending = new Map<string, Pending>();
  #next = 0;

  /** Starts a call: returns the request id and the promise of its answer. */
  begin(clientId: string, timeoutMs: number): { requestId: string; result: Promise<MethodResult> } {
    const requestId = (++this.#next).toString(16);
    const result = new Promise<MethodResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(requestId);
        reject(new KedgeError(ErrorCode.Timeout, `direct method timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(requestId, { clientId, resolve, timer });
    });
    return { requestId, result };
  }

  /** Completes a call; answers from another client than the one asked are ignored. */
  complete(clientId: string, requestId: string, status: number, body: Buffer): boolean {
    const p = this.#pending.get(requestId);
    if (!p || p.clientId !== clientId) return false;
    this.#pending.delete(requestId);
    clearTimeout(p.timer);
    let payload: unknown;
    try {
      payload = body.length === 0 ? null : (JSON.parse(body.toString('utf8')) as unknown);
    } catch {
      payload = body.toString('utf8');
    }
    p.resolve({ status, payload });
    return true;
  }

  /** Fails every pending call (hub stopping). */
  cancelAll(): void {
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      this.#pending.delete(id);
      p.resolve({ status: 503, payload: { message: 'hub stopping' } });
    }
  }
}
