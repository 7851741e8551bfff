/**
 * `kedge support-bundle`: one `.tar.gz` with what a maintainer asks for first. The node's log
 * (journald), each module's log, the config with its secrets redacted, `kedge check` output, the
 * local `/metrics` and `/status`, and versions. Every text is scrubbed of the config's secret
 * values before it goes in.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import type { Readable } from 'node:stream';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { errorMessage } from '../common/errors.js';
import { silentLogger } from '../common/logger.js';
import { KEDGE_VERSION } from '../common/version.js';
import { loadConfig, type NodeConfig } from '../edgenode/config.js';
import { createRuntime } from '../edgenode/node-runner.js';
import { localEndpointUrl, runDeviceChecks } from './device.js';
import { redactValue, scrubText } from './redact.js';
import { formatResults } from './result.js';
import { tarGzip, type TarEntry } from './tar.js';

/** The systemd unit `kedge node` runs as (packaging/systemd/kedge-node.service). */
export const NODE_UNIT = 'kedge-node';
/** A module's log beyond this is cut: a bundle must stay small enough to attach to an issue. */
export const MODULE_LOG_MAX_BYTES = 8 * 1024 * 1024;
/** journald output beyond this is cut, for the same reason. */
const JOURNAL_MAX_BYTES = 32 * 1024 * 1024;
const COMMAND_TIMEOUT_MS = 30_000;
const HTTP_TIMEOUT_MS = 5_000;

const UNIT_SECS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `90s`, `30m`, `1h`, `2d` → seconds; throws naming the bad value. */
export function parseSince(text: string): number {
  const match = /^(\d+)([smhd])$/.exec(text.trim());
  if (!match) throw new Error(`--since ${text}: expected a number and s, m, h or d (e.g. 1h)`);
  return Number(match[1]) * UNIT_SECS[match[2]!]!;
}

/** Inputs of {@link collectSupportBundle}. */
export interface SupportBundleOptions {
  configFile: string;
  /** Logs from this long ago (s). */
  sinceSecs: number;
  env?: NodeJS.ProcessEnv;
}

/** The config file, parsed and redacted; `secrets` receives every value taken out. */
async function redactedConfig(file: string, secrets: Set<string>): Promise<TarEntry> {
  let doc: unknown;
  try {
    doc = parseYaml(await readFile(file, 'utf8'));
  } catch (err) {
    // An unparseable file could hold a secret anywhere: leave it out entirely.
    return {
      name: 'config/node.yaml.txt',
      data: `not included: ${errorMessage(err).split('\n')[0]}\n`,
    };
  }
  return {
    name: 'config/node.yaml',
    data: `# ${file}, secrets redacted\n${stringifyYaml(redactValue(doc, secrets))}`,
  };
}

function run(command: string, args: string[], maxBuffer: number): Promise<string> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: COMMAND_TIMEOUT_MS, maxBuffer }, (err, stdout, stderr) => {
      if (err && !stdout) resolve(`${command} ${args.join(' ')}: ${errorMessage(err)}\n${stderr}`);
      else resolve(stdout);
    });
  });
}

async function journal(sinceSecs: number): Promise<TarEntry> {
  const since = new Date(Date.now() - sinceSecs * 1000)
    .toISOString()
    .replace('T', ' ')
    .slice(0, 19);
  const text = await run(
    'journalctl',
    ['-u', NODE_UNIT, '--since', `${since} UTC`, '--no-pager', '-o', 'short-iso'],
    JOURNAL_MAX_BYTES,
  );
  return { name: `logs/${NODE_UNIT}.journal.txt`, data: text };
}

async function readBounded(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    chunks.push(buf);
    size += buf.length;
    if (size >= MODULE_LOG_MAX_BYTES) {
      stream.destroy();
      chunks.push(Buffer.from(`\n[cut at ${MODULE_LOG_MAX_BYTES} bytes]\n`));
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** File names in the archive keep to a safe alphabet. */
function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 60);
}

async function moduleLogs(config: NodeConfig, sinceSecs: number): Promise<TarEntry[]> {
  const runtime = await createRuntime(config, silentLogger());
  try {
    const modules = await runtime.list();
    const since = new Date(Date.now() - sinceSecs * 1000);
    return await Promise.all(
      modules.map(async (m) => ({
        name: `logs/modules/${safeName(m.name)}.log`,
        data: await runtime
          .logs(m.id, { since, timestamps: true })
          .then(readBounded, (err: unknown) => `cannot read: ${errorMessage(err)}\n`),
      })),
    );
  } catch (err) {
    return [
      { name: 'logs/modules/README.txt', data: `cannot list modules: ${errorMessage(err)}\n` },
    ];
  }
}

async function fetchText(url: string): Promise<string> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    return `${await res.text()}`;
  } catch (err) {
    return `${url}: ${errorMessage(err)} (is kedge node running?)\n`;
  }
}

async function endpoint(config: NodeConfig): Promise<TarEntry[]> {
  const url = localEndpointUrl(config);
  if (!url) {
    const note = 'the metrics endpoint is off or on a random port (metrics.port: 0)\n';
    return [{ name: 'metrics.txt', data: note }];
  }
  return [
    { name: 'metrics.txt', data: await fetchText(`${url}/metrics`) },
    { name: 'status.json', data: await fetchText(`${url}/status`) },
  ];
}

async function versions(config: NodeConfig | undefined): Promise<TarEntry> {
  const osRelease = await readFile('/etc/os-release', 'utf8').catch(() => '');
  const pretty = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(osRelease)?.[1];
  let engine = 'unknown (config not readable)';
  if (config)
    engine = await createRuntime(config, silentLogger())
      .then((runtime) => runtime.info())
      .then(
        (i) => `${i.name} ${i.version}`,
        (err: unknown) => `${config.agent.runtime}: ${errorMessage(err)}`,
      );
  const text = JSON.stringify(
    {
      kedge: KEDGE_VERSION,
      node: process.version,
      engine,
      os: `${pretty ?? os.type()} (${os.type()} ${os.release()} ${os.arch()})`,
      collectedAt: new Date().toISOString(),
    },
    null,
    2,
  );
  return { name: 'versions.json', data: `${text}\n` };
}

/** Collects every entry of the bundle, secrets scrubbed. */
export async function collectSupportBundle(options: SupportBundleOptions): Promise<TarEntry[]> {
  const secrets = new Set<string>();
  const configEntry = await redactedConfig(options.configFile, secrets);
  const config = await loadConfig({
    file: options.configFile,
    ...(options.env ? { env: options.env } : {}),
  }).catch(() => undefined);
  if (config?.cloud?.key) secrets.add(config.cloud.key);
  const check = formatResults(
    await runDeviceChecks({
      configFile: options.configFile,
      ...(options.env ? { env: options.env } : {}),
    }),
  );
  const entries: TarEntry[] = [
    { name: 'kedge-check.txt', data: check },
    configEntry,
    await versions(config),
    await journal(options.sinceSecs),
    ...(config ? await moduleLogs(config, options.sinceSecs) : []),
    ...(config ? await endpoint(config) : []),
  ];
  return entries.map((e) => ({ ...e, data: scrubText(e.data.toString(), secrets) }));
}

/** Collects the bundle and returns its `.tar.gz` bytes. */
export async function supportBundle(options: SupportBundleOptions): Promise<Buffer> {
  const entries = await collectSupportBundle(options);
  return tarGzip(entries.map((e) => ({ ...e, name: `kedge-support/${e.name}` })));
}
