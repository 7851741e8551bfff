import { readdir, readFile } from 'node:fs/promises';
import { startTestCluster, eventually, type TestCluster } from './support/cluster.js';

/** PIDs of live processes whose command line mentions `needle`. */
async function processesMentioning(needle: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(needle)) pids.push(Number(entry));
  }
  return pids;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const deployment = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'default' },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: 'web' } },
    template: {
      metadata: { labels: { app: 'web' } },
      spec: { containers: [{ name: 'web', image: 'kedge-local/busybox:1' }] },
    },
  },
};

const boundPod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'bound-to-nowhere', namespace: 'default' },
  spec: { nodeName: 'no-such-node', containers: [{ name: 'c', image: 'kedge-local/busybox:1' }] },
};

describe('local control plane harness', () => {
  it('starts and stops twice in a row without leaking a process', async () => {
    for (let round = 1; round <= 2; round++) {
      const cluster = await startTestCluster(`lifecycle-${round}`);
      const pids = cluster.cp.pids();
      expect(pids).toHaveLength(4);
      const version = JSON.parse(await cluster.kubectlOk(['version', '-o', 'json']));
      expect(version.serverVersion.gitVersion).toBe('v1.36.3');
      const marker = cluster.cp.kubeconfigPath.split('/').slice(0, -1).join('/');
      await cluster.cp.stop();
      expect(pids.filter(alive)).toEqual([]);
      expect(await processesMentioning(marker)).toEqual([]);
    }
  });

  describe('scheduler and controller-manager', () => {
    let cluster: TestCluster;
    beforeAll(async () => {
      cluster = await startTestCluster('controllers');
    });
    afterAll(async () => cluster?.cp.stop());

    it('turns a Deployment into a ReplicaSet and a pod that the scheduler evaluates', async () => {
      await cluster.kubectlOk(['apply', '-f', '-'], JSON.stringify(deployment));
      const rs = await eventually('a ReplicaSet', async () => {
        const out = JSON.parse(
          await cluster.kubectlOk(['get', 'rs', '-l', 'app=web', '-o', 'json']),
        );
        return out.items[0]?.metadata.name as string | undefined;
      });
      expect(rs).toMatch(/^web-/);
      // No node exists, so the scheduler must mark the pod unschedulable: proof that it ran.
      const reason = await eventually('the scheduler to evaluate the pod', async () => {
        const out = JSON.parse(
          await cluster.kubectlOk(['get', 'pods', '-l', 'app=web', '-o', 'json']),
        );
        const cond = out.items[0]?.status.conditions?.find((c: any) => c.type === 'PodScheduled');
        return cond?.status === 'False' ? (cond.reason as string) : undefined;
      });
      expect(reason).toBe('Unschedulable');
    });

    it('accepts a pod bound to a node that does not exist, and the pod GC removes it', async () => {
      await cluster.kubectlOk(['apply', '-f', '-'], JSON.stringify(boundPod));
      const phase = await cluster.kubectlOk([
        'get',
        'pod',
        'bound-to-nowhere',
        '-o',
        'jsonpath={.spec.nodeName}',
      ]);
      expect(phase).toBe('no-such-node');
      // kube-controller-manager's pod garbage collector deletes pods bound to missing nodes.
      await eventually(
        'the orphaned pod to be garbage-collected',
        async () => {
          const res = await cluster.kubectl(['get', 'pod', 'bound-to-nowhere', '-o', 'name']);
          return res.code !== 0 && res.stderr.includes('NotFound') ? true : undefined;
        },
        150_000,
        1000,
      );
    }, 180_000);
  });
});
