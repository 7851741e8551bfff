/**
 * Resource usage a device samples and sends on its `usage` leaf: cumulative CPU and memory
 * working set for the device and for each running module, plus the readings that decide the
 * Node's pressure conditions. It travels apart from the report because it changes on every
 * sample: a report is sent on change and every report reconciles the device.
 */
import { Ajv, type ErrorObject } from 'ajv';

/** Modules one usage message may list; the report's own bound. */
export const MAX_USAGE_MODULES = 1_000;
/**
 * Largest usage payload the gateway forwards. A module entry is about 120 bytes, so this holds
 * the full {@link MAX_USAGE_MODULES} with room to spare.
 */
export const MAX_USAGE_BYTES = 256 * 1024;

/** The device as a whole. */
export interface NodeUsage {
  /** When it was read, epoch ms. */
  atMs: number;
  /** CPU time spent by the whole device since boot, seconds. */
  cpuSecs: number;
  /** Memory in use that the kernel cannot simply drop (total minus free minus inactive file), bytes. */
  memoryWorkingSetBytes: number;
  /** Memory size, bytes. */
  memoryBytes: number;
  /** Free space of the data directory's file system for unprivileged users, bytes. */
  diskAvailableBytes: number;
  /** Size of that file system, bytes. */
  diskBytes: number;
  /** Free inodes of that file system; absent where the file system has no fixed count. */
  inodesFree?: number;
  inodes?: number;
  /** Processes and threads alive, and the kernel's limit on them. */
  pids?: number;
  pidsMax?: number;
}

/** One running module. */
export interface ModuleUsage {
  /** Module name: the container name of its pod. */
  name: string;
  atMs: number;
  /** CPU time the module's processes spent since it started, seconds. */
  cpuSecs: number;
  /** Memory working set, bytes. */
  memoryWorkingSetBytes: number;
}

/** What a device sends on its `usage` leaf. */
export interface UsageMessage {
  node: NodeUsage;
  modules: ModuleUsage[];
}

const amount = { type: 'number', minimum: 0 } as const;

const nodeSchema = {
  type: 'object',
  required: [
    'atMs',
    'cpuSecs',
    'memoryWorkingSetBytes',
    'memoryBytes',
    'diskAvailableBytes',
    'diskBytes',
  ],
  properties: {
    atMs: amount,
    cpuSecs: amount,
    memoryWorkingSetBytes: amount,
    memoryBytes: amount,
    diskAvailableBytes: amount,
    diskBytes: amount,
    inodesFree: amount,
    inodes: amount,
    pids: amount,
    pidsMax: amount,
  },
} as const;

const moduleSchema = {
  type: 'object',
  required: ['name', 'atMs', 'cpuSecs', 'memoryWorkingSetBytes'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 253 },
    atMs: amount,
    cpuSecs: amount,
    memoryWorkingSetBytes: amount,
  },
} as const;

/** JSON schema of a {@link UsageMessage}. */
export const USAGE_MESSAGE_SCHEMA = {
  type: 'object',
  required: ['node', 'modules'],
  properties: {
    node: nodeSchema,
    modules: { type: 'array', maxItems: MAX_USAGE_MODULES, items: moduleSchema },
  },
} as const;

const validate = new Ajv({ allErrors: false }).compile<UsageMessage>(USAGE_MESSAGE_SCHEMA);

/** The message when `value` is a well-formed {@link UsageMessage}, else the first problem. */
export function checkUsage(value: unknown): { usage: UsageMessage } | { problem: string } {
  if (validate(value)) return { usage: value };
  return { problem: describe(validate.errors?.[0]) };
}

function describe(error: ErrorObject | undefined | null): string {
  if (!error) return 'invalid usage message';
  return `${error.instancePath || '(usage)'} ${error.message ?? 'is invalid'}`;
}
