/**
 * dockerode, minus ~20 MiB of RSS: dockerode loads `@grpc/grpc-js` and `@grpc/proto-loader` (for
 * BuildKit sessions) and docker-modem loads `ssh2` (for `ssh://` DOCKER_HOST) as soon as it is
 * required. The agent needs neither on its default path, and the footprint target is 75 MB, so
 * those three are replaced by stand-ins that load the real module on first use. See
 * docs/adr/0003-agent-footprint.md.
 */
import { createRequire, Module } from 'node:module';
import path from 'node:path';
import type DockerType from 'dockerode';

const require = createRequire(import.meta.url);

/** Loads `resolved` for real: drops the stand-in from the cache first. */
function loadReal(resolved: string): Record<string, unknown> {
  delete require.cache[resolved];
  return require(resolved) as Record<string, unknown>;
}

/** Puts a stand-in for `id` (as seen from `fromDir`) into the CommonJS cache. */
function deferModule(id: string, fromDir: string, eagerKeys: string[] = []): void {
  let resolved: string;
  try {
    resolved = require.resolve(id, { paths: [fromDir] });
  } catch {
    return; // Not installed: nothing to defer.
  }
  if (require.cache[resolved]) return;
  let real: Record<string, unknown> | undefined;
  const get = (): Record<string, unknown> => (real ??= loadReal(resolved));
  const target: Record<string, unknown> = {};
  // Names read at require time (`require('ssh2').Client`) get a constructor that defers too.
  for (const key of eagerKeys) {
    target[key] = function Deferred(...args: unknown[]): unknown {
      const Real = get()[key] as new (...a: unknown[]) => unknown;
      return new Real(...args);
    };
  }
  const stub = new Module(resolved);
  stub.filename = resolved;
  stub.loaded = true;
  stub.exports = new Proxy(target, {
    get: (t, key) => (typeof key === 'string' && key in t ? t[key] : get()[key as string]),
  });
  require.cache[resolved] = stub;
}

const dockerodeDir = path.dirname(require.resolve('dockerode/package.json'));
const modemDir = path.dirname(
  require.resolve('docker-modem/package.json', { paths: [dockerodeDir] }),
);
deferModule('@grpc/grpc-js', dockerodeDir);
deferModule('@grpc/proto-loader', dockerodeDir);
deferModule('ssh2', modemDir, ['Client']);

/** The dockerode constructor. */
export const Docker = require('dockerode') as typeof DockerType;
