import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';

/** What the local endpoint serves. */
export interface LocalEndpointOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Served one after the other on `/metrics` (the agent's, then the hub's). */
  registries: Registry[];
  /** JSON for `GET /status` (the agent's snapshot). */
  status: () => unknown;
}

/** A running local endpoint. */
export interface LocalEndpoint {
  /** `http://host:port`. */
  url: string;
  close(): Promise<void>;
}

/** Every registry's series in one text; their metric names do not overlap (`kedge_agent_*`, `kedge_hub_*`). */
async function exposition(registries: Registry[]): Promise<string> {
  const texts = await Promise.all(registries.map((r) => r.metrics()));
  return texts.map((t) => (t.endsWith('\n') || t === '' ? t : `${t}\n`)).join('');
}

/** Serves `GET /metrics` (Prometheus text), `GET /status` (JSON) and `GET /healthz`. */
export async function startLocalEndpoint(options: LocalEndpointOptions): Promise<LocalEndpoint> {
  const server: Server = createServer((req, res) => {
    const route = req.method === 'GET' ? (req.url ?? '').split('?')[0] : undefined;
    if (route === '/metrics') {
      exposition(options.registries).then(
        (text) =>
          res.writeHead(200, { 'content-type': Registry.PROMETHEUS_CONTENT_TYPE }).end(text),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
    } else if (route === '/status') {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify(options.status()));
    } else if (route === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
