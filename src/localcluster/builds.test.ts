import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from '../common/version.js';
import {
  ETCD_VERSION,
  HELM_VERSION,
  KUBERNETES_VERSION,
  NATS_SERVER_VERSION,
  etcdBuild,
  requireGoFor,
} from './builds.js';

const script = (name: string): string =>
  readFileSync(path.join(PACKAGE_ROOT, 'src/localcluster', name), 'utf8');

describe('cached builds', () => {
  it('pins the same versions as the build scripts', () => {
    expect(script('build-control-plane.sh')).toContain(`KEDGE_K8S_VERSION:-${KUBERNETES_VERSION}}`);
    expect(script('build-control-plane.sh')).toContain(`KEDGE_HELM_VERSION:-${HELM_VERSION}}`);
    expect(script('build-etcd.sh')).toContain(`KEDGE_ETCD_VERSION:-${ETCD_VERSION}}`);
    expect(script('build-nats-server.sh')).toContain(`KEDGE_NATS_VERSION:-${NATS_SERVER_VERSION}}`);
    expect(script('etcdbin/go.mod')).toContain(`go.etcd.io/etcd/server/v3 ${ETCD_VERSION}`);
  });

  describe('requireGoFor', () => {
    const saved = { PATH: process.env.PATH, KEDGE_CACHE_DIR: process.env.KEDGE_CACHE_DIR };
    afterEach(() => Object.assign(process.env, saved));

    it('names Go and every missing build in one line when Go is not on PATH', () => {
      process.env.PATH = '/nonexistent';
      process.env.KEDGE_CACHE_DIR = '/nonexistent-cache';
      expect(() => requireGoFor([etcdBuild(), { what: 'x v1', binary: '/nope' }])).toThrow(
        `Go is required to build etcd ${ETCD_VERSION} and x v1 (kedge builds them once from the Go module proxy into /nonexistent-cache): install Go from https://go.dev/dl/`,
      );
    });

    it('asks for nothing when every build is cached', () => {
      process.env.PATH = '/nonexistent';
      expect(() => requireGoFor([{ what: 'sh', binary: '/bin/sh' }])).not.toThrow();
    });
  });
});
