/**
 * The JSON schema of {@link ReportedMessage}, checked where the controller takes a device's
 * report: a report it cannot read must be dropped at the door, not fail every reconcile that
 * reads the device's state.
 */
import { Ajv, type ErrorObject } from 'ajv';
import { MAX_REPORTED_LEAVES, type ModuleReport, type ReportedMessage } from './protocol.js';

/** Modules one report may list; far above what a device runs. */
const MAX_REPORTED_MODULES = 1_000;
/** Longest string field accepted; module status texts are the long ones. */
const MAX_STRING_LENGTH = 4_096;

/** Every {@link ModuleReport} runtime status; the record makes the compiler check the list. */
const RUNTIME_STATUSES: Record<ModuleReport['runtimeStatus'], true> = {
  unknown: true,
  backoff: true,
  running: true,
  unhealthy: true,
  stopped: true,
  failed: true,
  dead: true,
};

const text = { type: 'string', maxLength: MAX_STRING_LENGTH } as const;
const count = { type: 'number', minimum: 0 } as const;

const factsSchema = {
  type: 'object',
  required: [
    'os',
    'arch',
    'cpus',
    'memoryBytes',
    'diskBytes',
    'containerRuntimeVersion',
    'agentVersion',
  ],
  properties: {
    os: text,
    arch: text,
    cpus: count,
    memoryBytes: count,
    diskBytes: count,
    kernelVersion: text,
    osImage: text,
    hostname: text,
    containerRuntimeVersion: text,
    agentVersion: text,
    maxModules: { type: 'integer', minimum: 0 },
  },
} as const;

const moduleSchema = {
  type: 'object',
  required: ['name', 'runtimeStatus', 'restartCount'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 253 },
    image: text,
    imageID: text,
    containerID: text,
    runtimeStatus: { enum: Object.keys(RUNTIME_STATUSES) },
    exitCode: { type: 'integer' },
    statusDescription: text,
    restartCount: { type: 'integer', minimum: 0 },
    lastStartTimeUtc: text,
    lastExitTimeUtc: text,
    lastRestartTimeUtc: text,
    reason: text,
    specHash: text,
    pullStartedTimeUtc: text,
  },
} as const;

/** JSON schema of a device report. */
export const REPORTED_MESSAGE_SCHEMA = {
  type: 'object',
  required: ['desiredVersion', 'outcome', 'facts', 'modules', 'at'],
  properties: {
    desiredVersion: { type: 'integer', minimum: 0 },
    outcome: {
      type: 'object',
      required: ['status'],
      properties: { status: { enum: ['applied', 'rejected', 'pending'] }, message: text },
    },
    facts: factsSchema,
    modules: { type: 'array', maxItems: MAX_REPORTED_MODULES, items: moduleSchema },
    leaves: {
      type: 'array',
      maxItems: MAX_REPORTED_LEAVES,
      items: { type: 'string', minLength: 1, maxLength: 128 },
    },
    at: text,
  },
} as const;

const validate = new Ajv({ allErrors: false }).compile<ReportedMessage>(REPORTED_MESSAGE_SCHEMA);

/** The report when `value` is a well-formed {@link ReportedMessage}, else the first problem. */
export function checkReport(value: unknown): { report: ReportedMessage } | { problem: string } {
  if (validate(value)) return { report: value };
  return { problem: describe(validate.errors?.[0]) };
}

function describe(error: ErrorObject | undefined | null): string {
  if (!error) return 'invalid report';
  return `${error.instancePath || '(report)'} ${error.message ?? 'is invalid'}`;
}
