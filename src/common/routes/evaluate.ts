/**
 * Compiles a condition tree into a closure once, so a message costs only the closure calls.
 * Semantics (IoT Hub routing query language): type mismatches and missing properties yield
 * `undefined`; AND/OR are three-valued; a route matches only when the condition is exactly `true`.
 */
import type { BinaryOp, Expr, Value } from './ast.js';
import { decodeBody } from './body.js';
import { BUILTINS } from './builtins.js';

/** What a condition can read from a message. */
export interface RoutableMessage {
  /** Raw body. */
  body: Buffer;
  /** Application properties. */
  appProperties: ReadonlyMap<string, string>;
  /**
   * System properties by name without `$`: `connectionDeviceId`, `connectionModuleId`,
   * `contentType`, `contentEncoding`, `messageId`, `outputName`, …
   */
  systemProperties: ReadonlyMap<string, string>;
}

/** Per-message evaluation state: the body is parsed at most once across all routes. */
export class EvalContext {
  readonly message: RoutableMessage;
  #body: unknown;
  #bodyParsed = false;

  constructor(message: RoutableMessage) {
    this.message = message;
  }

  /** The JSON body, or `undefined` when the message is not `application/json` in UTF-x. */
  get json(): unknown {
    if (!this.#bodyParsed) {
      this.#bodyParsed = true;
      this.#body = parseJsonBody(this.message);
    }
    return this.#body;
  }
}

/** The JSON body, decoded in the message's contentEncoding (UTF-8, -16 or -32). */
function parseJsonBody(message: RoutableMessage): unknown {
  const ct = message.systemProperties.get('contentType')?.toLowerCase();
  const ce = message.systemProperties.get('contentEncoding');
  if (ct !== 'application/json' || ce === undefined) return undefined;
  const text = decodeBody(message.body, ce);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export type Evaluator = (ctx: EvalContext) => Value;

/** `body.a.b[0]` → steps `['a', 'b', 0]`. */
function bodySteps(name: string): (string | number)[] {
  const steps: (string | number)[] = [];
  for (const part of name.slice('body.'.length).split('.')) {
    const m = /^([^[]+)(?:\[(\d+)\])?$/.exec(part);
    if (!m) return [];
    steps.push(m[1]!);
    if (m[2] !== undefined) steps.push(Number(m[2]));
  }
  return steps;
}

function toValue(v: unknown): Value {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  return undefined; // objects and arrays are not values of the language
}

function compileBody(name: string): Evaluator {
  const steps = bodySteps(name);
  return (ctx) => {
    let cur: unknown = ctx.json;
    for (const step of steps) {
      if (cur === null || typeof cur !== 'object') return undefined;
      if (typeof step === 'number' && !Array.isArray(cur)) return undefined;
      cur = (cur as Record<string | number, unknown>)[step];
    }
    return toValue(cur);
  };
}

function compileSysprop(name: string, escaped: boolean): Evaluator {
  const isBody = name.startsWith('body.') || name.includes('[');
  const resolve: Evaluator = isBody
    ? compileBody(name)
    : (ctx) => ctx.message.systemProperties.get(name);
  if (escaped) return resolve;
  const appName = `$${name}`;
  // An application property literally named `$name` wins, as in edgeHub.
  return (ctx) => ctx.message.appProperties.get(appName) ?? resolve(ctx);
}

type Binary = (a: Value, b: Value) => Value;
const bothNumbers =
  (f: (a: number, b: number) => number): Binary =>
  (a, b) =>
    typeof a === 'number' && typeof b === 'number' ? finiteOrUndefined(f(a, b)) : undefined;

function finiteOrUndefined(x: number): number | undefined {
  return Number.isFinite(x) ? x : undefined;
}

function sameType(a: Value, b: Value): boolean {
  return a !== undefined && b !== undefined && typeof a === typeof b;
}

const compare =
  (f: (c: number) => boolean): Binary =>
  (a, b) => {
    if (!sameType(a, b) || (typeof a !== 'number' && typeof a !== 'string')) return undefined;
    return f(a < b! ? -1 : a > b! ? 1 : 0);
  };

const equals: Binary = (a, b) => (sameType(a, b) ? a === b : undefined);

const BINARY: Record<Exclude<BinaryOp, 'AND' | 'OR' | '??'>, Binary> = {
  '*': bothNumbers((a, b) => a * b),
  '/': bothNumbers((a, b) => a / b),
  '%': bothNumbers((a, b) => a % b),
  '+': bothNumbers((a, b) => a + b),
  '-': bothNumbers((a, b) => a - b),
  '||': (a, b) => (typeof a === 'string' && typeof b === 'string' ? a + b : undefined),
  '<': compare((c) => c < 0),
  '<=': compare((c) => c <= 0),
  '>': compare((c) => c > 0),
  '>=': compare((c) => c >= 0),
  '=': equals,
  '!=': (a, b) => {
    const e = equals(a, b);
    return e === undefined ? undefined : !e;
  },
  '<>': (a, b) => BINARY['!='](a, b),
};

function compileLogical(op: 'AND' | 'OR' | '??', l: Evaluator, r: Evaluator): Evaluator {
  if (op === '??') return (ctx) => l(ctx) ?? r(ctx);
  if (op === 'AND')
    return (ctx) => {
      const a = l(ctx);
      if (a === false) return false;
      const b = r(ctx);
      if (b === false) return false;
      return a === true && b === true ? true : undefined;
    };
  return (ctx) => {
    const a = l(ctx);
    if (a === true) return true;
    const b = r(ctx);
    if (b === true) return true;
    return a === false && b === false ? false : undefined;
  };
}

/** Compiles an expression to a closure. */
export function compileExpr(expr: Expr): Evaluator {
  switch (expr.type) {
    case 'literal': {
      const v = expr.value;
      return () => v;
    }
    case 'sysprop':
      return compileSysprop(expr.name, expr.escaped);
    case 'appprop': {
      const name = expr.name;
      return (ctx) => ctx.message.appProperties.get(name);
    }
    case 'call': {
      const fn = BUILTINS.get(expr.name)!.fn;
      const args = expr.args.map(compileExpr);
      return (ctx) => fn(args.map((a) => a(ctx)));
    }
    case 'unary': {
      const operand = compileExpr(expr.operand);
      if (expr.op === 'NOT')
        return (ctx) => {
          const v = operand(ctx);
          return typeof v === 'boolean' ? !v : undefined;
        };
      return (ctx) => {
        const v = operand(ctx);
        return typeof v === 'number' ? -v : undefined;
      };
    }
    case 'binary': {
      const l = compileExpr(expr.left);
      const r = compileExpr(expr.right);
      if (expr.op === 'AND' || expr.op === 'OR' || expr.op === '??')
        return compileLogical(expr.op, l, r);
      const f = BINARY[expr.op];
      return (ctx) => f(l(ctx), r(ctx));
    }
  }
}
