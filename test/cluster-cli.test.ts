import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { PACKAGE_ROOT } from '../src/localcluster/kubectl.js';
import { pidAlive } from '../src/localcluster/processes.js';

const run = promisify(execFile);
const CLI = path.join(PACKAGE_ROOT, 'dist/cli/main.js');

async function kedge(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const { stdout } = await run(process.execPath, [CLI, ...args], { env, timeout: 300_000 });
  return stdout;
}

/** The value of `export NAME=value` in the printed lines. */
function exported(output: string, name: string): string {
  const match = new RegExp(`^export ${name}=(\\S+)`, 'm').exec(output);
  if (!match) throw new Error(`no export of ${name} in:\n${output}`);
  return match[1]!;
}

describe('kedge cluster up/down', () => {
  it('runs a control plane and a JetStream nats-server in the background and stops both', async () => {
    const home = await mkdtemp(path.join(tmpdir(), 'kedge-cluster-home-'));
    const env: NodeJS.ProcessEnv = { ...process.env, KEDGE_HOME: home };
    delete env.KUBECONFIG;
    delete env.KEDGE_NATS_URL;
    try {
      const output = await kedge(['cluster', 'up'], env);
      const natsUrl = exported(output, 'KEDGE_NATS_URL');
      expect(natsUrl).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
      expect(exported(output, 'KUBECONFIG')).toBe(path.join(home, 'local-cluster', 'kubeconfig'));
      const state = JSON.parse(
        await readFile(path.join(home, 'local-cluster', 'state.json'), 'utf8'),
      ) as { pid: number; natsUrl: string };
      expect(state.natsUrl).toBe(natsUrl);
      expect(await kedge(['cluster', 'status'], env)).toContain(`NATS ${natsUrl}`);

      const nc = await connect({ servers: natsUrl });
      const account = await (await jetstreamManager(nc)).getAccountInfo();
      expect(account.limits).toBeDefined();
      await nc.close();
      expect(existsSync(path.join(home, 'local-cluster', 'nats', 'jetstream'))).toBe(true);

      expect(await kedge(['cluster', 'down'], env)).toContain('Local cluster stopped.');
      expect(pidAlive(state.pid)).toBe(false);
      await expect(connect({ servers: natsUrl, reconnect: false })).rejects.toThrow();
      expect(existsSync(path.join(home, 'local-cluster', 'nats'))).toBe(false);
    } finally {
      await kedge(['cluster', 'down'], env).catch(() => undefined);
    }
  }, 300_000);
});
