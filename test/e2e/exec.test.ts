// kubectl exec, attach, port-forward and cp end to end: the real kubectl talks to the real API
// server, which upgrades to SPDY/3.1 toward the controller's kubelet API; sessions go through NATS
// and the gateway to a real `kedge node`, on real dockerd (one device) and on the process runtime
// (another).
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { RunningController } from '../../src/controller/manager.js';
import { docker } from '../../src/localcluster/docker.js';
import { LOCAL_IMAGES } from '../../src/localcluster/images.js';
import { freePort } from '../../src/localcluster/ports.js';
import { eventually, startTestCluster, type TestCluster } from '../support/cluster.js';
import { startTestNats, type TestNats } from '../support/nats.js';
import { startNode, startTestController, type NodeProcess } from './support.js';

const DOCKER_DEVICE = 'execd';
const PROCESS_DEVICE = 'execp';
const nodeOf = (device: string): string => `${device}.default.kedge`;
const PREFIX = `e2e-${DOCKER_DEVICE}-`;
const TOLERATE = [{ key: 'kedge.io/edge', operator: 'Exists' }];
/** Bytes served over port-forward and copied with kubectl cp: past several windows. */
const BIG_BYTES = 3 * 1024 * 1024;

/** busybox httpd on 8080 serving a greeting and a large random file. */
const WEB = [
  'mkdir -p /www',
  'echo hello-from-module > /www/index.html',
  `head -c ${BIG_BYTES} /dev/urandom > /www/big`,
  'exec httpd -f -p 8080 -h /www',
].join('; ');
const SLEEP = 'trap "exit 0" TERM; while :; do sleep 1; done';

function pod(name: string, node: string, container: Record<string, unknown>): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: { nodeName: node, tolerations: TOLERATE, containers: [container] },
  });
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

describe('kubectl exec, attach, port-forward and cp to modules on real kedge nodes', () => {
  let cluster: TestCluster;
  let nats: TestNats;
  let controller: RunningController;
  let dockerNode: NodeProcess | undefined;
  let processNode: NodeProcess | undefined;
  let work: string;
  let ports: { hub: number; kubelet: number };
  /** A process module serving HTTP on the device's loopback, as process modules do. */
  let processWebPort: number;

  /** kubectl with optional stdin, run under `script` (a terminal) when `tty` is set. */
  const kubectl = (
    args: string[],
    options: {
      input?: string;
      tty?: { rows: number; cols: number };
      inputDelayMs?: number;
      env?: Record<string, string>;
    } = {},
  ): Promise<Run> => {
    const started = Date.now();
    const bin = path.join(cluster.cp.binDir, 'kubectl');
    const argv = [`--kubeconfig=${cluster.cp.kubeconfigPath}`, ...args];
    const [file, fileArgs] = options.tty
      ? [
          'script',
          [
            '-q',
            '-e',
            '-c',
            `stty rows ${options.tty.rows} cols ${options.tty.cols}; ${[bin, ...argv].map((a) => `'${a}'`).join(' ')}`,
            '/dev/null',
          ],
        ]
      : [bin, argv];
    return new Promise((resolve) => {
      const child = spawn(file, fileArgs, {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { ...process.env, ...options.env },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('exit', (code) =>
        resolve({ code: code ?? 1, stdout, stderr, ms: Date.now() - started }),
      );
      if (options.input === undefined) child.stdin.end();
      else setTimeout(() => child.stdin.end(options.input), options.inputDelayMs ?? 0);
    });
  };
  const report = (what: string, run: Run): void =>
    void process.stdout.write(`${what}: exit ${run.code} in ${run.ms} ms\n`);

  beforeAll(async () => {
    cluster = await startTestCluster('exec');
    nats = await startTestNats('exec');
    ports = { hub: await freePort(), kubelet: await freePort() };
    controller = await startTestController(cluster, ports, nats.url);
    work = await mkdtemp(path.join(tmpdir(), 'kedge-exec-'));
    for (const device of [DOCKER_DEVICE, PROCESS_DEVICE])
      await cluster.kubectlOk(
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'kedge.io/v1alpha1',
          kind: 'EdgeDevice',
          metadata: { name: device, namespace: 'default' },
          spec: { heartbeat: { intervalSecs: 2, offlineAfterSecs: 8 } },
        }),
      );
    dockerNode = await startNode(cluster, DOCKER_DEVICE, ports.hub);
    processNode = await startNode(cluster, PROCESS_DEVICE, ports.hub, {
      config: { agent: { runtime: 'process', stopModulesOnExit: true, stopGraceSecs: 2 } },
    });
    await cluster.kubectlOk(
      ['apply', '-f', '-'],
      pod('web', nodeOf(DOCKER_DEVICE), {
        name: 'web',
        image: LOCAL_IMAGES.busybox,
        imagePullPolicy: 'Never',
        command: ['sh', '-c', WEB],
        ports: [{ containerPort: 8080 }],
      }),
    );
    await cluster.kubectlOk(
      ['apply', '-f', '-'],
      pod('proc', nodeOf(PROCESS_DEVICE), {
        name: 'proc',
        image: 'none',
        command: ['/bin/sh', '-c', SLEEP],
        env: [{ name: 'GREETING', value: 'hello from the process module' }],
        workingDir: '/tmp',
      }),
    );
    await cluster.kubectlOk(
      ['apply', '-f', '-'],
      pod('talker', nodeOf(DOCKER_DEVICE), {
        name: 'talker',
        image: LOCAL_IMAGES.busybox,
        imagePullPolicy: 'Never',
        stdin: true,
        command: ['sh', '-c', 'read line; echo "heard $line"'],
      }),
    );
    processWebPort = await freePort();
    const site = path.join(work, 'site');
    await mkdir(site, { recursive: true });
    await writeFile(path.join(site, 'index.html'), 'hello-from-a-process\n');
    await chmod(work, 0o755);
    await chmod(site, 0o755);
    await cluster.kubectlOk(
      ['apply', '-f', '-'],
      pod('procweb', nodeOf(PROCESS_DEVICE), {
        name: 'procweb',
        image: 'none',
        command: ['/bin/busybox', 'httpd', '-f', '-p', `127.0.0.1:${processWebPort}`, '-h', site],
        ports: [{ containerPort: processWebPort }],
      }),
    );
    for (const name of ['web', 'proc', 'procweb', 'talker'])
      await eventually(
        `pod ${name} running`,
        async () => {
          const res = await cluster.kubectl(['get', 'pod', name, '-o', 'jsonpath={.status.phase}']);
          return res.stdout === 'Running' ? true : undefined;
        },
        120_000,
      );
    // The web module writes its files before it serves them.
    await eventually('web module serving', async () => {
      const res = await kubectl(['exec', 'web', '--', 'sh', '-c', `test -s /www/big && echo ok`]);
      if (!res.stdout.includes('ok')) throw new Error(JSON.stringify(res));
      return true;
    });
  }, 240_000);

  afterAll(async () => {
    await dockerNode?.kill('SIGTERM');
    await processNode?.kill('SIGTERM');
    await controller?.stop();
    await nats?.stop();
    await cluster?.cp.stop();
    const ids = await docker(['ps', '-aq', '--filter', `name=${PREFIX}`]).catch(() => '');
    if (ids) await docker(['rm', '-f', ...ids.split('\n')]).catch(() => undefined);
  });

  it('runs a command in a Docker module: stdout, stderr and the exit code', async () => {
    const run = await kubectl(['exec', 'web', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    report('docker exec', run);
    expect(run.stdout).toBe('out\n');
    expect(run.stderr).toContain('err\n');
    expect(run.code).toBe(3);
    const ok = await kubectl(['exec', 'web', '--', 'cat', '/www/index.html']);
    expect(ok).toMatchObject({ code: 0, stdout: 'hello-from-module\n' });
    // Older clients speak SPDY to the API server, which then passes it through unchanged.
    const spdy = await kubectl(['exec', 'web', '--', 'sh', '-c', 'echo spdy; exit 6'], {
      env: { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' },
    });
    expect(spdy).toMatchObject({ code: 6, stdout: 'spdy\n' });
  });

  it('feeds stdin to a Docker module with exec -i', async () => {
    const run = await kubectl(
      ['exec', '-i', 'web', '--', 'sh', '-c', 'read line; echo "got $line"; exit 7'],
      { input: 'first line\n' },
    );
    report('docker exec -i', run);
    expect(run.stdout).toBe('got first line\n');
    expect(run.code).toBe(7);
  });

  it('runs an interactive shell with a terminal in a Docker module, sized like the client', async () => {
    const run = await kubectl(['exec', '-it', 'web', '--', 'sh'], {
      tty: { rows: 33, cols: 101 },
      input: 'stty size; tty; exit 4\n',
      inputDelayMs: 1_500,
    });
    report('docker exec -it', run);
    expect(run.stdout).toContain('33 101');
    expect(run.stdout).toMatch(/\/dev\/pts\/\d+/);
    expect(run.code).toBe(4);
  });

  it("attaches to a Docker module's own stdin and output", async () => {
    const run = await kubectl(['attach', '-i', 'talker'], { input: 'hello\n', inputDelayMs: 500 });
    report('docker attach -i', run);
    expect(run.stdout).toContain('heard hello');
    expect(run.code).toBe(0);
  });

  it('runs commands in a process module with its environment, directory and user', async () => {
    const run = await kubectl([
      'exec',
      'proc',
      '--',
      'sh',
      '-c',
      'echo "$GREETING"; pwd; id -un; exit 2',
    ]);
    report('process exec', run);
    expect(run.stdout).toBe('hello from the process module\n/tmp\nnobody\n');
    expect(run.code).toBe(2);
    const shell = await kubectl(['exec', '-it', 'proc', '--', 'sh'], {
      tty: { rows: 21, cols: 77 },
      input: 'stty size; echo "[$GREETING]"; exit 5\n',
      inputDelayMs: 1_500,
    });
    report('process exec -it', shell);
    expect(shell.stdout).toContain('21 77');
    expect(shell.stdout).toContain('[hello from the process module]');
    expect(shell.code).toBe(5);
  });

  it.each([
    ['WebSocket-tunnelled', 'true'],
    ['plain SPDY', 'false'],
  ])(
    'forwards a local port to a TCP port inside a Docker module (%s)',
    async (mode, websockets) => {
      const local = await freePort();
      const forward = spawn(
        path.join(cluster.cp.binDir, 'kubectl'),
        [`--kubeconfig=${cluster.cp.kubeconfigPath}`, 'port-forward', 'pod/web', `${local}:8080`],
        { env: { ...process.env, KUBECTL_PORT_FORWARD_WEBSOCKETS: websockets } },
      );
      let output = '';
      forward.stdout.on('data', (c: Buffer) => (output += c.toString()));
      forward.stderr.on('data', (c: Buffer) => (output += c.toString()));
      try {
        await eventually('port-forward listening', async () =>
          output.includes('Forwarding from') ? true : undefined,
        );
        const fetch = (file: string): Promise<Buffer> =>
          new Promise((resolve, reject) =>
            get(`http://127.0.0.1:${local}/${file}`, (res) => {
              const parts: Buffer[] = [];
              res.on('data', (c: Buffer) => parts.push(c));
              res.on('end', () => resolve(Buffer.concat(parts)));
              res.on('error', reject);
            }).on('error', reject),
          );
        expect((await fetch('index.html')).toString()).toBe('hello-from-module\n');
        const started = Date.now();
        const big = await fetch('big');
        const ms = Date.now() - started;
        process.stdout.write(`port-forward (${mode}): ${big.length} bytes in ${ms} ms\n`);
        const inside = await kubectl(['exec', 'web', '--', 'sha256sum', '/www/big']);
        expect(inside.stdout.split(' ')[0]).toBe(createHash('sha256').update(big).digest('hex'));
      } finally {
        forward.kill();
      }
    },
  );

  it('forwards a local port to a process module on the device loopback', async () => {
    const local = await freePort();
    const forward = spawn(path.join(cluster.cp.binDir, 'kubectl'), [
      `--kubeconfig=${cluster.cp.kubeconfigPath}`,
      'port-forward',
      'pod/procweb',
      `${local}:${processWebPort}`,
    ]);
    let output = '';
    forward.stdout.on('data', (c: Buffer) => (output += c.toString()));
    forward.stderr.on('data', (c: Buffer) => (output += c.toString()));
    try {
      await eventually('port-forward listening', async () =>
        output.includes('Forwarding from') ? true : undefined,
      );
      const body = await new Promise<string>((resolve, reject) =>
        get(`http://127.0.0.1:${local}/index.html`, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve(text));
        }).on('error', reject),
      );
      expect(body).toBe('hello-from-a-process\n');
    } finally {
      forward.kill();
    }
  });

  it('copies a file into a module and back with kubectl cp', async () => {
    const data = randomBytes(BIG_BYTES);
    const source = path.join(work, 'up.bin');
    const back = path.join(work, 'down.bin');
    await writeFile(source, data);
    const up = await kubectl(['cp', source, 'default/web:/tmp/up.bin', '-c', 'web']);
    report('kubectl cp to the module', up);
    expect(up.code).toBe(0);
    const inside = await kubectl(['exec', 'web', '--', 'sha256sum', '/tmp/up.bin']);
    expect(inside.stdout.split(' ')[0]).toBe(createHash('sha256').update(data).digest('hex'));
    const down = await kubectl(['cp', 'default/web:/tmp/up.bin', back, '-c', 'web']);
    report('kubectl cp from the module', down);
    expect(down.code).toBe(0);
    expect((await readFile(back)).equals(data)).toBe(true);
  });

  it('says clearly what cannot be done', async () => {
    const missing = await kubectl(['exec', 'web', '--', 'no-such-command']);
    expect(missing.code).not.toBe(0);
    // Docker reports it on the command's own output, as with a real kubelet.
    expect(missing.stdout + missing.stderr).toContain(
      '"no-such-command": executable file not found',
    );
    const missingProcess = await kubectl(['exec', 'proc', '--', 'no-such-command']);
    expect(missingProcess.code).not.toBe(0);
    expect(missingProcess.stderr).toContain(
      'exec: "no-such-command": executable file not found in $PATH',
    );
    const attach = await kubectl(['attach', 'proc']);
    expect(attach.code).not.toBe(0);
    expect(attach.stderr).toContain('attach is not supported by the process runtime');
    const nothere = await kubectl(['exec', 'web', '-c', 'nothere', '--', 'true']);
    expect(nothere.code).not.toBe(0);
    expect(nothere.stderr).toContain('nothere');
    // Nothing listens on 9999 in the module: the forwarded connection fails, and says why.
    const local = await freePort();
    const forward = spawn(path.join(cluster.cp.binDir, 'kubectl'), [
      `--kubeconfig=${cluster.cp.kubeconfigPath}`,
      'port-forward',
      'pod/web',
      `${local}:9999`,
    ]);
    let output = '';
    forward.stdout.on('data', (c: Buffer) => (output += c.toString()));
    forward.stderr.on('data', (c: Buffer) => (output += c.toString()));
    try {
      await eventually('port-forward listening', async () =>
        output.includes('Forwarding from') ? true : undefined,
      );
      await new Promise<void>((resolve) =>
        get(`http://127.0.0.1:${local}/`, () => resolve()).on('error', () => resolve()),
      );
      await eventually('the forwarding error', async () =>
        output.includes('connection refused') ? true : undefined,
      );
      expect(output).toContain('kedge: error forwarding port 9999');
    } finally {
      forward.kill();
    }
  });

  it('refuses exec to a user whose role lacks pods/exec', async () => {
    await cluster.kubectlOk(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name: 'pod-reader', namespace: 'default' },
        rules: [{ apiGroups: [''], resources: ['pods', 'pods/log'], verbs: ['get', 'list'] }],
      }),
    );
    await cluster.kubectlOk([
      'create',
      'rolebinding',
      'eve-reads-pods',
      '--role=pod-reader',
      '--user=eve',
    ]);
    expect(await kubectl(['get', 'pod', 'web', '--as', 'eve'])).toMatchObject({ code: 0 });
    const refused = await kubectl(['exec', 'web', '--as', 'eve', '--', 'true']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('cannot create resource "pods/exec"');
    const forward = await kubectl([
      'port-forward',
      'pod/web',
      '--as',
      'eve',
      `${await freePort()}:8080`,
    ]);
    expect(forward.code).not.toBe(0);
    expect(forward.stderr).toContain('pods/portforward');
  });

  it("authorizes the kubelet API's own callers for nodes/proxy on the pod's node", async () => {
    await cluster.kubectlOk(['create', 'serviceaccount', 'intruder']);
    const token = (await cluster.kubectlOk(['create', 'token', 'intruder'])).trim();
    const upgrade = (urlPath: string, auth = true): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const req = httpsRequest({
          host: '127.0.0.1',
          port: ports.kubelet,
          path: urlPath,
          method: 'POST',
          rejectUnauthorized: false,
          headers: {
            ...(auth ? { Authorization: `Bearer ${token}` } : {}),
            Connection: 'Upgrade',
            Upgrade: 'SPDY/3.1',
            'X-Stream-Protocol-Version': 'v4.channel.k8s.io',
          },
        });
        req.once('response', (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.once('upgrade', (_res, socket) => {
          socket.destroy();
          resolve({ status: 101, body: '' });
        });
        req.once('error', reject);
        req.end();
      });
    const exec = '/exec/default/web/web?command=true&output=1';
    expect(await upgrade(exec, false)).toMatchObject({ status: 401 });
    const denied = await upgrade(exec);
    expect(denied.status).toBe(403);
    expect(JSON.parse(denied.body).message).toBe(
      `Forbidden: system:serviceaccount:default:intruder may not exec on node ${nodeOf(DOCKER_DEVICE)}`,
    );
    const logs = await upgrade('/containerLogs/default/web/web');
    expect(logs.status).toBe(403);
    expect(logs.body).toContain('only for exec, attach and portForward');
    const unknown = await upgrade('/exec/default/no-such-pod/web?command=true&output=1');
    expect(JSON.parse(unknown.body)).toMatchObject({
      code: 404,
      message: 'kedge: pod default/no-such-pod is not on a kedge node',
    });
  });

  it('kills the command on the device when the client hangs up', async () => {
    const child = spawn(path.join(cluster.cp.binDir, 'kubectl'), [
      `--kubeconfig=${cluster.cp.kubeconfigPath}`,
      'exec',
      'web',
      '--',
      'sleep',
      '4321',
    ]);
    const running = async (): Promise<boolean> =>
      (await kubectl(['exec', 'web', '--', 'ps'])).stdout.includes('sleep 4321');
    await eventually('sleep running in the module', async () =>
      (await running()) ? true : undefined,
    );
    child.kill('SIGKILL');
    await eventually(
      'sleep gone from the module',
      async () => ((await running()) ? undefined : true),
      30_000,
    );
  });

  it('ends a session with a clear error when the device disconnects', async () => {
    const session = kubectl(['exec', 'proc', '--', 'sleep', '4321']);
    const psOnDevice = (): Promise<boolean> =>
      new Promise((resolve) => {
        const ps = spawn('pgrep', ['-f', '^sleep 4321']);
        ps.on('exit', (code) => resolve(code === 0));
      });
    await eventually('sleep running on the device', async () =>
      (await psOnDevice()) ? true : undefined,
    );
    await processNode!.kill('SIGKILL');
    processNode = undefined;
    const run = await session;
    report('exec across a device disconnect', run);
    process.stdout.write(`  kubectl said: ${run.stderr}`);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('device disconnected');
    // The command outlives its agent, as modules do; the test cleans up after itself.
    const pids = await new Promise<string>((resolve) => {
      const ps = spawn('pgrep', ['-f', '^sleep 4321']);
      let out = '';
      ps.stdout.on('data', (c: Buffer) => (out += c.toString()));
      ps.on('exit', () => resolve(out));
    });
    for (const pid of pids.split('\n').filter(Boolean)) process.kill(Number(pid), 'SIGKILL');
  });
});
