import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

/** Serves `/healthz`, `/readyz` (503 until `isReady`) and `/metrics` from `registry`. */
export async function startHealthServer(
  port: number,
  registry: Registry,
  isReady: () => boolean,
  host?: string,
): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === '/healthz') return void res.end('ok');
    if (req.url === '/readyz') {
      res.statusCode = isReady() ? 200 : 503;
      return void res.end(isReady() ? 'ok' : 'starting');
    }
    if (req.url === '/metrics') {
      void registry.metrics().then((text) => {
        res.setHeader('content-type', registry.contentType);
        res.end(text);
      });
      return;
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  return server;
}
