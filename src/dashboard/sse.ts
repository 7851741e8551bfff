import type { ServerResponse } from 'node:http';

/**
 * A comment line this often keeps idle streams open through proxies and lets the server notice
 * a closed tab; browsers reconnect an EventSource on their own when it drops.
 */
const KEEPALIVE_MS = 15_000;

/** One server-sent-events stream to a page. */
export interface SseStream {
  send(event: string, data: unknown): void;
  /** Sends data already serialized as JSON. */
  sendJson(event: string, json: string): void;
  /** Resolves when the page goes away. */
  readonly closed: Promise<void>;
  isClosed(): boolean;
}

/** Starts a server-sent-events answer on `res`. */
export function openSse(res: ServerResponse): SseStream {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
  });
  res.write(': kedge dashboard\n\n');
  const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
  let closed = false;
  const done = new Promise<void>((resolve) =>
    res.once('close', () => {
      closed = true;
      clearInterval(keepalive);
      resolve();
    }),
  );
  return {
    send(event, data) {
      if (!closed) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    },
    sendJson(event, json) {
      if (!closed) res.write(`event: ${event}\ndata: ${json}\n\n`);
    },
    closed: done,
    isClosed: () => closed,
  };
}
