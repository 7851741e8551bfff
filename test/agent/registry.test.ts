// Authenticated pulls from a real local registry (Debian docker-registry) behind htpasswd.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { LOCAL_IMAGES, SLEEPER, TestDevice, docker, manifest, waitFor } from './helpers.js';

const run = promisify(execFile);
const USER = 'kedge';
const PASSWORD = 's3cret-pw';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

describe('authenticated image pull from a local docker-registry', () => {
  let dir: string;
  let registry: ChildProcess;
  let address: string;
  let device: TestDevice;
  let push: (image: string) => Promise<unknown>;
  const images: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'kedge-registry-'));
    const port = await freePort();
    address = `127.0.0.1:${port}`;
    const { stdout } = await run('htpasswd', ['-Bbn', USER, PASSWORD]);
    await writeFile(path.join(dir, 'htpasswd'), stdout);
    await writeFile(
      path.join(dir, 'config.yml'),
      [
        'version: 0.1',
        'log: { level: error }',
        `storage: { filesystem: { rootdirectory: ${dir}/data } }`,
        `http: { addr: "${address}" }`,
        `auth: { htpasswd: { realm: kedge, path: ${dir}/htpasswd } }`,
      ].join('\n'),
    );
    registry = spawn('/usr/bin/docker-registry', ['serve', path.join(dir, 'config.yml')], {
      stdio: 'ignore',
    });
    await waitFor('registry up', async () => (await fetch(`http://${address}/v2/`)).status === 401);
    // A private docker config, so the login never touches the machine's credentials.
    const env = { ...process.env, DOCKER_CONFIG: path.join(dir, 'docker-config') };
    const tag = path
      .basename(dir)
      .toLowerCase()
      .replace(/[^a-z0-9]/g, '');
    for (const name of ['good', 'denied', 'moving'])
      images.push(`${address}/kedge/${name}-${tag}:1`);
    await new Promise<void>((resolve, reject) => {
      const login = spawn('docker', ['login', address, '-u', USER, '--password-stdin'], {
        env,
        stdio: ['pipe', 'ignore', 'ignore'],
      });
      login.stdin.end(PASSWORD);
      login.on('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`docker login: ${code}`)),
      );
    });
    for (const image of images) {
      await docker(['tag', LOCAL_IMAGES.busybox, image]);
      await run('docker', ['push', image], { env });
      await docker(['rmi', image]);
    }
    push = (image: string) => run('docker', ['push', image], { env });
  });

  afterAll(async () => {
    for (const image of images) await docker(['rmi', image]).catch(() => '');
    registry?.kill();
    await rm(dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    device = await new TestDevice().init();
  });
  afterEach(async () => {
    await device.cleanup();
  });

  it('pulls with the manifest credentials; wrong credentials give ErrImagePull while the rest run', async () => {
    const agent = device.agent();
    await agent.start();
    const creds = (password: string) => ({ local: { address, username: USER, password } });
    await agent.apply(
      manifest(
        { private: { image: images[0], imagePullPolicy: 'on-create', cmd: SLEEPER } },
        creds(PASSWORD),
      ),
    );
    const pulled = await waitFor('private running', () => {
      const m = agent.snapshot().modules.private;
      return m?.runtimeStatus === 'running' ? m : undefined;
    });
    expect(pulled.image).toBe(images[0]);
    expect(pulled.imageId).toMatch(/^sha256:/);

    await agent.apply(
      manifest(
        {
          private: { image: images[0], imagePullPolicy: 'on-create', cmd: SLEEPER },
          denied: { image: images[1], imagePullPolicy: 'on-create', cmd: SLEEPER },
          other: { cmd: SLEEPER },
        },
        creds('wrong-password'),
      ),
    );
    const denied = await waitFor('denied pull reported', () => {
      const m = agent.snapshot().modules.denied;
      return m?.reason === 'ErrImagePull' ? m : undefined;
    });
    expect(['backoff', 'failed']).toContain(denied.runtimeStatus);
    expect(denied.statusDescription).toMatch(
      /^ErrImagePull: .*denied.*: .*(unauthorized|authentication required)/,
    );
    expect(denied.statusDescription).not.toContain('wrong-password');
    await waitFor(
      'other running',
      () => agent.snapshot().modules.other?.runtimeStatus === 'running',
    );
    expect(agent.snapshot().modules.private!.runtimeStatus).toBe('running');
    const metric = await agent.metrics.registry.getSingleMetricAsString(
      'kedge_agent_image_pull_failures_total',
    );
    expect(metric).toMatch(/kedge_agent_image_pull_failures_total\{module="denied"\} [1-9]/);
  });

  it('imagePullPolicy always: a tag re-pushed to the registry is pulled and its module recreated', async () => {
    const image = images[2]!;
    const agent = device.agent({ imageRefreshMs: 1_000 });
    await agent.start();
    const creds = { local: { address, username: USER, password: PASSWORD } };
    await agent.apply(
      manifest({ moving: { image, imagePullPolicy: 'always', cmd: SLEEPER } }, creds),
    );
    const first = await waitFor('moving running', () => {
      const m = agent.snapshot().modules.moving;
      return m?.runtimeStatus === 'running' ? m : undefined;
    });
    // A new image under the same tag, pushed; the device's own tag is put back on the old one,
    // so only a pull can move it.
    const container = await docker(['create', LOCAL_IMAGES.busybox, 'true']);
    await docker(['commit', '--change', 'LABEL kedge.test.variant=2', container, image]);
    await docker(['rm', container]);
    const pushedId = await docker(['image', 'inspect', '--format', '{{.Id}}', image]);
    await push(image);
    await docker(['tag', LOCAL_IMAGES.busybox, image]);
    expect(pushedId).not.toBe(first.imageId);
    const moved = await waitFor(
      'moving recreated from the re-pushed image',
      () => {
        const m = agent.snapshot().modules.moving;
        return m?.runtimeStatus === 'running' && m.imageId === pushedId ? m : undefined;
      },
      30_000,
    );
    expect(moved.instanceId).not.toBe(first.instanceId);
    // The same image again: nothing is recreated.
    await new Promise((r) => setTimeout(r, 2_500));
    expect(agent.snapshot().modules.moving?.instanceId).toBe(moved.instanceId);
  });
});
