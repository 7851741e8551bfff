/**
 * `deployment.template.json` placeholders, as the IoT Edge dev tools fill them before a manifest
 * is deployed: `${NAME}` and `$NAME` in keys and string values, from `--set NAME=VALUE` or the
 * environment. Filling happens on the parsed JSON, so a value never breaks the document's syntax.
 */
import { ErrorCode, KedgeError } from '../../common/errors.js';
import { joinPath } from '../../common/manifest/index.js';

/** Where placeholder values come from: `--set` pairs first, then the environment. */
export interface TemplateValues {
  /** `--set NAME=VALUE` pairs. */
  set: ReadonlyMap<string, string>;
  /** The process environment (or a test's stand-in). */
  env: Readonly<Record<string, string | undefined>>;
}

/** One placeholder nothing filled, and where it is. */
export interface UnresolvedPlaceholder {
  name: string;
  /** JSON path of the key or string that holds it, e.g. `modulesContent.$edgeAgent[…].image`. */
  path: string;
}

/**
 * `${NAME}`: any name the dev tools use, including `${MODULES.filter.amd64}` (which only `--set`
 * can fill, the environment has no such names). `$NAME`: an environment-variable name.
 */
const PLACEHOLDER = /\$\{([A-Za-z_][A-Za-z0-9_.-]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;

/**
 * IoT Edge's own `$` names, which are never placeholders: the system module twins, `$upstream`,
 * twin metadata and the routing query's system properties and `$body`/`$twin`. Compared in lower
 * case.
 */
const RESERVED = new Set(
  [
    'edgeAgent',
    'edgeHub',
    'upstream',
    'version',
    'metadata',
    'schema',
    'body',
    'twin',
    'messageId',
    'correlationId',
    'userId',
    'to',
    'expiryTimeUtc',
    'contentType',
    'contentEncoding',
    'outputName',
    'connectionDeviceId',
    'connectionModuleId',
    'interfaceId',
    'creationTime',
    'messageSchema',
    'component',
  ].map((n) => n.toLowerCase()),
);

/** A key under which string values are routes: there only `${NAME}` is a placeholder. */
const ROUTE_KEYS = /^(routes|properties\.desired\.routes\..+)$/;

/**
 * Fills every placeholder in `doc` and returns the filled copy.
 * @throws KedgeError `KEDGE_ERR_INVALID_INPUT` naming every unresolved placeholder with its path.
 */
export function fillTemplate(doc: unknown, values: TemplateValues): unknown {
  const unresolved: UnresolvedPlaceholder[] = [];
  const filled = fill(doc, { values, path: '', inRoute: false, unresolved });
  if (unresolved.length > 0) {
    const list = unresolved.map((u) => `${u.name} (at ${u.path || '(document)'})`).join(', ');
    const names = [...new Set(unresolved.map((u) => u.name))];
    throw new KedgeError(
      ErrorCode.InvalidInput,
      `unresolved placeholder${unresolved.length > 1 ? 's' : ''} ${list}: pass ${names.map((n) => `--set ${n}=…`).join(' ')} or set ${names.length > 1 ? 'them' : 'it'} in the environment; nothing was written`,
    );
  }
  return filled;
}

/**
 * Parses `--set NAME=VALUE` pairs (the value may contain `=`).
 * @throws KedgeError `KEDGE_ERR_INVALID_INPUT` naming a pair without `=` or with a bad name.
 */
export function parseSetPairs(pairs: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const name = eq > 0 ? pair.slice(0, eq) : '';
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name)) {
      throw new KedgeError(
        ErrorCode.InvalidInput,
        `--set ${JSON.stringify(pair)} is not NAME=VALUE (NAME: letters, digits, _ . -, not starting with a digit)`,
      );
    }
    out.set(name, pair.slice(eq + 1));
  }
  return out;
}

interface FillState {
  values: TemplateValues;
  path: string;
  inRoute: boolean;
  unresolved: UnresolvedPlaceholder[];
}

function fill(value: unknown, state: FillState): unknown {
  if (typeof value === 'string') return fillString(value, state, !state.inRoute);
  if (Array.isArray(value))
    return value.map((item, i) => fill(item, { ...state, path: joinPath(state.path, i) }));
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    const path = joinPath(state.path, key);
    // Keys: `${NAME}` only, so `$edgeAgent`-like keys and twin metadata stay as they are.
    const filledKey = fillString(key, { ...state, path }, false);
    const inRoute = state.inRoute || ROUTE_KEYS.test(key);
    out[filledKey] = fill(child, { ...state, path, inRoute });
  }
  return out;
}

function fillString(text: string, state: FillState, bareToo: boolean): string {
  return text.replace(PLACEHOLDER, (match, braced?: string, bare?: string) => {
    const name = braced ?? bare!;
    if (braced === undefined && (!bareToo || RESERVED.has(name.toLowerCase()))) return match;
    const value = lookup(name, state.values);
    if (value !== undefined) return value;
    state.unresolved.push({ name, path: state.path });
    return match;
  });
}

function lookup(name: string, values: TemplateValues): string | undefined {
  return values.set.get(name) ?? values.env[name];
}
