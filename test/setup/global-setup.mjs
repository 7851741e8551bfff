// Shared preparation for the integration tests: a running dockerd, the locally built images and
// the cached control-plane, etcd and nats-server builds. Imports the compiled sources (`npm test` builds first).
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { ensureBinaries, ensureEtcd } from '../../dist/localcluster/control-plane.js';
import { ensureDocker } from '../../dist/localcluster/docker.js';
import { ensureLocalImages } from '../../dist/localcluster/images.js';
import { ensureNatsServer } from '../../dist/localcluster/nats.js';
import { PACKAGE_ROOT } from '../../dist/localcluster/kubectl.js';

export default async function globalSetup() {
  const artifacts = path.join(PACKAGE_ROOT, '.test-artifacts');
  await rm(artifacts, { recursive: true, force: true });
  await mkdir(artifacts, { recursive: true });
  await ensureDocker(artifacts);
  await ensureLocalImages();
  const progress = (line) => process.stderr.write(`${line}\n`);
  await ensureNatsServer(progress);
  await ensureEtcd(progress);
  await ensureBinaries(progress);
}
