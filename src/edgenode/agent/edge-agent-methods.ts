/**
 * The `$edgeAgent` direct methods IoT Edge defines, so tooling and modules that call them keep
 * working: `ping`, `RestartModule` and `GetModuleLogs` (schema 1.0).
 */
import type { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { errorMessage, ErrorCode, isKedgeError } from '../../common/errors.js';
import type { LogOptions } from './types.js';

/** The module id the methods answer to. */
export const EDGE_AGENT_MODULE_ID = '$edgeAgent';

/** A method's answer, as a module's would be. */
export interface SystemMethodResult {
  status: number;
  payload: unknown;
}

/** What the methods need from the agent. */
export interface EdgeAgentPort {
  restartModule(name: string): Promise<void>;
  logs(module: string, options: LogOptions): Promise<Readable>;
  moduleNames(): string[];
}

/**
 * IoT Hub answers a method with at most 128 KiB; logs beyond this are cut from the start, so the
 * newest lines are the ones kept.
 */
const MAX_LOG_BYTES = 120 * 1024;
/** syslog severity edgeAgent assumes for a line without a `<n>` prefix (informational). */
const DEFAULT_LOG_LEVEL = 6;

export function edgeAgentMethods(
  agent: EdgeAgentPort,
): (method: string, payload: unknown) => Promise<SystemMethodResult> {
  return async (method, payload) => {
    try {
      switch (method) {
        case 'ping':
          return { status: 200, payload: null };
        case 'RestartModule':
          await agent.restartModule(restartTarget(payload));
          return { status: 200, payload: null };
        case 'GetModuleLogs':
          return { status: 200, payload: await moduleLogs(agent, logsRequest(payload)) };
        default:
          return fail(
            501,
            `$edgeAgent has no method ${method}; it has ping, RestartModule and GetModuleLogs`,
          );
      }
    } catch (err) {
      if (err instanceof BadRequest) return fail(400, err.message);
      if (isKedgeError(err, ErrorCode.NotFound)) return fail(404, errorMessage(err));
      return fail(500, errorMessage(err));
    }
  };
}

class BadRequest extends Error {}

function fail(status: number, message: string): SystemMethodResult {
  return { status, payload: { message } };
}

function objectPayload(payload: unknown, method: string): Record<string, unknown> {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload))
    throw new BadRequest(`${method} takes a JSON object payload`);
  const body = payload as Record<string, unknown>;
  const version = body.schemaVersion;
  if (version !== undefined && !(typeof version === 'string' && version.startsWith('1.')))
    throw new BadRequest(`${method}: schemaVersion must be "1.0"`);
  return body;
}

function restartTarget(payload: unknown): string {
  const { id } = objectPayload(payload, 'RestartModule');
  if (typeof id !== 'string' || !id) throw new BadRequest('RestartModule: "id" names the module');
  return id;
}

interface LogFilter {
  tail?: number;
  since?: Date;
  until?: Date;
  logLevel?: number;
  regex?: RegExp;
}

interface LogsRequest {
  items: { id: RegExp; filter: LogFilter }[];
  gzip: boolean;
  json: boolean;
}

function logsRequest(payload: unknown): LogsRequest {
  const body = objectPayload(payload, 'GetModuleLogs');
  if (!Array.isArray(body.items) || body.items.length === 0)
    throw new BadRequest('GetModuleLogs: "items" lists at least one {"id": "<module regex>"}');
  const encoding = body.encoding ?? 'none';
  const contentType = body.contentType ?? 'text';
  if (encoding !== 'none' && encoding !== 'gzip')
    throw new BadRequest('GetModuleLogs: "encoding" is "none" or "gzip"');
  if (contentType !== 'text' && contentType !== 'json')
    throw new BadRequest('GetModuleLogs: "contentType" is "text" or "json"');
  return {
    items: body.items.map((item: unknown, i) => logItem(item, i)),
    gzip: encoding === 'gzip',
    json: contentType === 'json',
  };
}

function logItem(item: unknown, i: number): { id: RegExp; filter: LogFilter } {
  const at = `GetModuleLogs: items[${i}]`;
  if (typeof item !== 'object' || item === null) throw new BadRequest(`${at} is not an object`);
  const { id, filter = {} } = item as { id?: unknown; filter?: Record<string, unknown> };
  if (typeof id !== 'string' || !id) throw new BadRequest(`${at}.id names a module (a regex)`);
  return { id: regex(`^(?:${id})$`, `${at}.id`), filter: logFilter(filter, `${at}.filter`) };
}

function logFilter(filter: Record<string, unknown>, at: string): LogFilter {
  const f: LogFilter = {};
  const { tail, loglevel, regex: pattern } = filter;
  if (tail !== undefined) {
    if (!Number.isInteger(tail) || (tail as number) < 0)
      throw new BadRequest(`${at}.tail is a whole number`);
    f.tail = tail as number;
  }
  for (const key of ['since', 'until'] as const) {
    if (filter[key] === undefined) continue;
    const when = logTime(filter[key]);
    if (!when)
      throw new BadRequest(
        `${at}.${key} is a time (RFC 3339, Unix seconds or a duration like 15m)`,
      );
    f[key] = when;
  }
  if (loglevel !== undefined) {
    if (!Number.isInteger(loglevel)) throw new BadRequest(`${at}.loglevel is 0–7`);
    f.logLevel = loglevel as number;
  }
  if (pattern !== undefined) {
    if (typeof pattern !== 'string') throw new BadRequest(`${at}.regex is a string`);
    f.regex = regex(pattern, `${at}.regex`);
  }
  return f;
}

function regex(source: string, at: string): RegExp {
  try {
    return new RegExp(source);
  } catch {
    throw new BadRequest(`${at} is not a valid regular expression`);
  }
}

const DURATION = /^(\d+)\s*(s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** edgeAgent's time forms: RFC 3339, Unix seconds, or a duration back from now. */
function logTime(value: unknown): Date | undefined {
  if (typeof value === 'number') return new Date(value * 1000);
  if (typeof value !== 'string') return undefined;
  const duration = DURATION.exec(value.trim());
  if (duration) return new Date(Date.now() - Number(duration[1]) * UNIT_MS[duration[2]!]!);
  if (/^\d+$/.test(value)) return new Date(Number(value) * 1000);
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

async function moduleLogs(agent: EdgeAgentPort, request: LogsRequest): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const name of agent.moduleNames()) {
    const item = request.items.find((i) => i.id.test(name));
    if (!item) continue;
    const lines = await readLines(agent, name, item.filter);
    const text = request.json
      ? JSON.stringify(lines.map((l) => ({ moduleId: name, ...l })))
      : lines.map((l) => l.text).join('\n');
    out.push(
      request.gzip
        ? { id: name, payloadBytes: gzipSync(text).toString('base64') }
        : { id: name, payload: text },
    );
  }
  return out;
}

interface LogLine {
  timeStamp?: string;
  logLevel: number;
  text: string;
}

async function readLines(agent: EdgeAgentPort, module: string, f: LogFilter): Promise<LogLine[]> {
  const options: LogOptions = { timestamps: true };
  if (f.since) options.since = f.since;
  const stream = await agent.logs(module, options);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  let lines = Buffer.concat(chunks)
    .toString('utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map(parseLine)
    .filter(
      (l) =>
        (!f.until || !l.timeStamp || Date.parse(l.timeStamp) <= f.until.getTime()) &&
        (f.logLevel === undefined || l.logLevel === f.logLevel) &&
        (!f.regex || f.regex.test(l.text)),
    );
  if (f.tail !== undefined) lines = lines.slice(Math.max(0, lines.length - f.tail));
  let bytes = 0;
  const kept: LogLine[] = [];
  for (let i = lines.length - 1; i >= 0; i--) {
    bytes += Buffer.byteLength(lines[i]!.text) + 1;
    if (bytes > MAX_LOG_BYTES) break;
    kept.unshift(lines[i]!);
  }
  return kept;
}

/** `2026-12-02T10:00:00.000000000Z <6> text` → its parts; the level prefix is optional. */
function parseLine(line: string): LogLine {
  const stamp = /^(\d{4}-\d\d-\d\dT\S+)\s(.*)$/.exec(line);
  const rest = stamp ? stamp[2]! : line;
  const level = /^<([0-7])>\s?(.*)$/.exec(rest);
  return {
    ...(stamp ? { timeStamp: stamp[1]! } : {}),
    logLevel: level ? Number(level[1]) : DEFAULT_LOG_LEVEL,
    text: level ? level[2]! : rest,
  };
}
