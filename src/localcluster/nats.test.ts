import path from 'node:path';
import { natsConfig } from './nats.js';

describe('natsConfig', () => {
  it('writes each node a config with its routes to the others and its own store', async () => {
    const text = natsConfig({
      name: 'kedge-1',
      port: 14222,
      httpPort: 18222,
      dataDir: '/data/kedge-1',
      cluster: { name: 'kedge', port: 16223, routePorts: [16222, 16224] },
    });
    expect(text).toContain('server_name: "kedge-1"');
    expect(text).toContain(`store_dir: "${path.join('/data/kedge-1', 'jetstream')}"`);
    expect(text).toContain(
      'routes: ["nats-route://127.0.0.1:16222", "nats-route://127.0.0.1:16224"]',
    );
    expect(text).not.toContain('domain');
  });

  it('gives a single server JetStream and no cluster block', () => {
    const text = natsConfig({ name: 'kedge-nats', port: 4222, httpPort: 8222, dataDir: '/d' });
    expect(text).toContain('listen: "127.0.0.1:4222"');
    expect(text).toContain('jetstream {');
    expect(text).not.toContain('cluster {');
  });
});
