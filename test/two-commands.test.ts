import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ETCD_VERSION } from '../src/localcluster/builds.js';
import { docker } from '../src/localcluster/docker.js';
import { PACKAGE_ROOT } from '../src/localcluster/kubectl.js';
import { eventually } from './support/cluster.js';
import {
  commandOf,
  descendants,
  expectFiltered,
  interruptAndCheckClean,
  listeningPorts,
  pathWithout,
  removePathShadows,
  startCommand,
  stillListening,
  stopAfterFailure,
  waitForTelemetry,
} from './support/up-run.js';

const run = promisify(execFile);
/** npm install in a fresh clone: packages from the local npm cache, better-sqlite3 compiled. */
const NPM_INSTALL_TIMEOUT_MS = 600_000;
/** A warm `kedge up` (every build cached) reaches "kedge is up" within a minute. */
const WARM_UP_BUDGET_MS = 60_000;

describe('kedge up', () => {
  const base = { ...process.env };
  delete base.KUBECONFIG;

  describe("the README's two commands in a fresh clone, with only Node.js and Go", () => {
    // A clone of this repository's HEAD (commit before running it by hand), installed as a user
    // does. etcd is hidden from PATH: kedge up must use the etcd it builds and caches. The cached
    // Kubernetes, etcd and nats-server builds in ~/.cache/kedge are reused.
    let clone: string;
    let env: NodeJS.ProcessEnv;

    beforeAll(async () => {
      clone = await mkdtemp(path.join(tmpdir(), 'kedge-clone-'));
      await run('git', ['clone', '--quiet', PACKAGE_ROOT, clone]);
      env = {
        ...base,
        PATH: await pathWithout(['etcd'], base.PATH ?? ''),
        // npm's once-a-week check for a newer npm can take seconds; it is not kedge's time.
        npm_config_update_notifier: 'false',
      };
      // This machine cannot download better-sqlite3's prebuilt binary or Node's headers; Debian's
      // nodejs ships the headers, which npm uses when told where they are.
      const nodedir = existsSync('/usr/include/node') ? { npm_config_nodedir: '/usr' } : {};
      await run('npm', ['install'], {
        cwd: clone,
        env: { ...env, ...nodedir },
        timeout: NPM_INSTALL_TIMEOUT_MS,
        maxBuffer: 16 * 1024 * 1024,
      });
    }, NPM_INSTALL_TIMEOUT_MS + 60_000);
    afterAll(async () => {
      await removePathShadows();
      if (clone) await rm(clone, { recursive: true, force: true });
    });

    it('npx kedge up names Go in one line within 5 s when the builds are not cached and Go is missing', async () => {
      const home = await mkdtemp(path.join(tmpdir(), 'kedge-up-home-'));
      const emptyCache = await mkdtemp(path.join(tmpdir(), 'kedge-empty-cache-'));
      const withoutGo = await pathWithout(['go'], env.PATH ?? '');
      // The first `npx kedge` in a directory makes npm link the project into its npx cache
      // (6-9 s here, npm's own one-time cost); the clock starts at the run after it.
      await run('npx', ['kedge', '--version'], { cwd: clone, env });
      const started = Date.now();
      const up = startCommand(
        'npx',
        ['kedge', 'up'],
        { ...env, KEDGE_HOME: home, KEDGE_CACHE_DIR: emptyCache, PATH: withoutGo },
        clone,
      );
      try {
        const code = await up.exited;
        expect(Date.now() - started).toBeLessThan(5_000);
        expect(code).toBe(1);
        expect(up.output().trim().split('\n')).toEqual([
          `kedge: Go is required to build nats-server v2.15.2, etcd v3.6.16, Kubernetes v1.36.3 and helm v3.21.4 (kedge builds them once from the Go module proxy into ${emptyCache}): install Go from https://go.dev/dl/`,
        ]);
      } finally {
        await stopAfterFailure(up);
      }
    });

    it('npx kedge up, without etcd on PATH, shows the sample telemetry; Ctrl-C leaves no process, container or port', async () => {
      const home = await mkdtemp(path.join(tmpdir(), 'kedge-up-home-'));
      const started = Date.now();
      const up = startCommand('npx', ['kedge', 'up'], { ...env, KEDGE_HOME: home }, clone);
      try {
        await eventually(
          '"kedge is up"',
          async () => {
            if (up.child.exitCode !== null) throw new Error(`kedge up exited:\n${up.output()}`);
            return up.output().includes('kedge is up') ? true : undefined;
          },
          300_000,
          250,
        );
        const upMs = Date.now() - started;
        expectFiltered(await waitForTelemetry(up));
        // Nothing was built: every part came from the cache.
        expect(up.output()).not.toMatch(/\] building /);
        expect(up.output()).toContain(`[etcd] etcd ${ETCD_VERSION} cached in`);
        const processes = await descendants(up.child.pid!);
        const etcd = processes.map(commandOf).filter((c) => / --name=kedge /.test(c));
        expect(etcd).toHaveLength(1);
        expect(etcd[0]).toContain(`/etcd-${ETCD_VERSION}/bin/etcd `);
        const ports = listeningPorts(processes);
        // The API server, etcd, the controller-manager, the scheduler, nats-server, the hub, ...
        expect(ports.length).toBeGreaterThanOrEqual(6);
        expect(upMs).toBeLessThan(WARM_UP_BUDGET_MS);

        await interruptAndCheckClean(up, processes);
        expect(stillListening(ports)).toEqual([]);
        expect(await docker(['ps', '-aq', '--filter', 'name=^kedge-up-'])).toBe('');
        expect(await docker(['network', 'ls', '-q', '--filter', 'name=^kedge-up$'])).toBe('');
        expect(existsSync(path.join(home, 'up', 'device'))).toBe(false);
        expect(existsSync(path.join(home, 'up', 'nats'))).toBe(false);
      } finally {
        await stopAfterFailure(up);
      }
    }, 600_000);
  });
});
