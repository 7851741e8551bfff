/**
 * Builds the Docker `ContainerCreate` body for a module: the manifest's `createOptions` passed
 * through, plus what kedge owns (labels, env, hostname, network, a host entry for the hub).
 */
import type { ModuleSpec } from './types.js';

/** Label prefix on everything the agent creates. */
export const LABEL_PREFIX = 'io.kedge.';
/** Labels the agent stamps on module containers. */
export const LABELS = {
  /** Always `agent`: marks containers the agent manages. */
  owner: `${LABEL_PREFIX}owner`,
  /** The device id, so two agents on one engine never touch each other's modules. */
  device: `${LABEL_PREFIX}device`,
  module: `${LABEL_PREFIX}module`,
  /** Hash of the module configuration; a different hash means recreate. */
  configHash: `${LABEL_PREFIX}config-hash`,
  restartPolicy: `${LABEL_PREFIX}restart-policy`,
  desiredStatus: `${LABEL_PREFIX}desired-status`,
} as const;
/** Value of the owner label. */
export const OWNER = 'agent';

/** Where modules come from and how they reach the hub. */
export interface ContainerContext {
  deviceId: string;
  /** Bridge network the modules join, with their module name as alias. */
  network: string;
  /** Host name that resolves to the Docker host (where `kedge node` runs the hub) inside modules. */
  gatewayHostName: string;
  /**
   * The address the gateway host name resolves to: the module network's gateway, where the hub
   * listens. Default Docker's `host-gateway` (the default bridge's gateway).
   */
  gatewayAddress?: string;
}

type Json = Record<string, unknown>;

function asRecord(value: unknown): Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? { ...(value as Json) }
    : {};
}

function asStrings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** Merges `KEY=value` lists; later entries win, order of first appearance is kept. */
export function mergeEnv(base: string[], overrides: Record<string, string>): string[] {
  const merged = new Map<string, string>();
  for (const entry of base) {
    const eq = entry.indexOf('=');
    merged.set(eq < 0 ? entry : entry.slice(0, eq), entry);
  }
  for (const [key, value] of Object.entries(overrides)) merged.set(key, `${key}=${value}`);
  return [...merged.values()];
}

/** The create body for `spec`. Never mutates `spec.createOptions`. */
export function containerCreateBody(spec: ModuleSpec, ctx: ContainerContext): Json {
  const options = spec.createOptions;
  const hostConfig = asRecord(options.HostConfig);
  const networkMode =
    typeof hostConfig.NetworkMode === 'string' ? hostConfig.NetworkMode : ctx.network;
  const onOurNetwork = networkMode === ctx.network;
  hostConfig.NetworkMode = networkMode;
  // The agent applies restart policies itself (edgeAgent does too); Docker must not race it.
  hostConfig.RestartPolicy = { Name: 'no' };
  if (networkMode !== 'host') {
    hostConfig.ExtraHosts = [
      ...asStrings(hostConfig.ExtraHosts),
      `${ctx.gatewayHostName}:${ctx.gatewayAddress ?? 'host-gateway'}`,
    ];
  }
  const body: Json = {
    ...options,
    Image: spec.image,
    Env: mergeEnv(asStrings(options.Env), spec.env),
    Labels: {
      ...asRecord(options.Labels),
      [LABELS.owner]: OWNER,
      [LABELS.device]: ctx.deviceId,
      [LABELS.module]: spec.name,
      [LABELS.configHash]: spec.configHash,
      [LABELS.restartPolicy]: spec.restartPolicy,
      [LABELS.desiredStatus]: spec.desiredStatus,
    },
    HostConfig: hostConfig,
  };
  if (networkMode !== 'host' && options.Hostname === undefined) body.Hostname = spec.name;
  if (onOurNetwork) {
    const networking = asRecord(options.NetworkingConfig);
    const endpoints = asRecord(networking.EndpointsConfig);
    const ours = asRecord(endpoints[ctx.network]);
    // Modules reach each other by name, as on IoT Edge: by container name and by module id.
    ours.Aliases = [...new Set([...asStrings(ours.Aliases), spec.name, spec.moduleId])];
    body.NetworkingConfig = {
      ...networking,
      EndpointsConfig: { ...endpoints, [ctx.network]: ours },
    };
  }
  return body;
}
