// A TCP load balancer standing in for a Kubernetes Service in front of gateway replicas: each new
// connection goes to the next backend that accepts it, as kube-proxy spreads connections over the
// ready endpoints.
import net from 'node:net';

export interface TcpBalancer {
  port: number;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 and spreads connections over `backends()` (ports on 127.0.0.1). */
export async function startTcpBalancer(backends: () => number[]): Promise<TcpBalancer> {
  let next = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    client.pause();
    const ports = backends();
    const tryBackend = (attempt: number): void => {
      if (attempt >= ports.length) return void client.destroy();
      const port = ports[(next++ + attempt) % ports.length]!;
      const upstream = net.connect(port, '127.0.0.1');
      let connected = false;
      upstream.once('connect', () => {
        connected = true;
        sockets.add(upstream);
        upstream.once('close', () => {
          sockets.delete(upstream);
          client.destroy();
        });
        client.once('close', () => upstream.destroy());
        client.pipe(upstream).pipe(client);
        client.resume();
      });
      upstream.on('error', () => {
        if (connected) client.destroy();
        else tryBackend(attempt + 1);
      });
    };
    tryBackend(0);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
