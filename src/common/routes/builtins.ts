/**
 * The built-in functions of the IoT Hub routing query language (edgeHub ConditionVisitor.cs).
 * Names are case-insensitive. A function given an argument of the wrong type returns
 * `undefined`, which makes the whole condition false, as in IoT Hub.
 */
import type { Value } from './ast.js';

/** A built-in: arity bounds and the implementation. */
export interface Builtin {
  minArgs: number;
  maxArgs: number;
  fn: (args: Value[]) => Value;
}

const num = (v: Value): v is number => typeof v === 'number' && Number.isFinite(v);
const str = (v: Value): v is string => typeof v === 'string';

function math1(f: (x: number) => number): Builtin {
  return { minArgs: 1, maxArgs: 1, fn: ([x]) => (num(x) ? finite(f(x)) : undefined) };
}

function finite(x: number): number | undefined {
  return Number.isFinite(x) ? x : undefined;
}

function strings2(f: (a: string, b: string) => Value): Builtin {
  return { minArgs: 2, maxArgs: 2, fn: ([a, b]) => (str(a) && str(b) ? f(a, b) : undefined) };
}

function substring([s, start, length]: Value[]): Value {
  if (!str(s) || !num(start) || !Number.isInteger(start) || start < 0) return undefined;
  if (length === undefined) return s.substring(start);
  if (!num(length) || !Number.isInteger(length) || length < 0) return undefined;
  return s.substring(start, start + length);
}

function asNumber([v]: Value[]): Value {
  if (num(v)) return v;
  if (!str(v) || v.trim() === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** Function table keyed by lower-case name. */
export const BUILTINS: ReadonlyMap<string, Builtin> = new Map<string, Builtin>([
  ['abs', math1(Math.abs)],
  ['exp', math1(Math.exp)],
  [
    'power',
    {
      minArgs: 2,
      maxArgs: 2,
      fn: ([x, y]) => (num(x) && num(y) ? finite(Math.pow(x, y)) : undefined),
    },
  ],
  ['square', math1((x) => x * x)],
  ['ceiling', math1(Math.ceil)],
  ['floor', math1(Math.floor)],
  ['sign', math1(Math.sign)],
  ['sqrt', math1(Math.sqrt)],
  ['as_number', { minArgs: 1, maxArgs: 1, fn: asNumber }],
  ['is_bool', { minArgs: 1, maxArgs: 1, fn: ([v]) => typeof v === 'boolean' }],
  ['is_defined', { minArgs: 1, maxArgs: 1, fn: ([v]) => v !== undefined }],
  ['is_null', { minArgs: 1, maxArgs: 1, fn: ([v]) => v === null }],
  ['is_number', { minArgs: 1, maxArgs: 1, fn: ([v]) => num(v) }],
  ['is_string', { minArgs: 1, maxArgs: 1, fn: ([v]) => str(v) }],
  [
    'concat',
    {
      minArgs: 2,
      maxArgs: 64,
      fn: (args) => (args.every(str) ? args.join('') : undefined),
    },
  ],
  ['length', { minArgs: 1, maxArgs: 1, fn: ([s]) => (str(s) ? s.length : undefined) }],
  ['lower', { minArgs: 1, maxArgs: 1, fn: ([s]) => (str(s) ? s.toLowerCase() : undefined) }],
  ['upper', { minArgs: 1, maxArgs: 1, fn: ([s]) => (str(s) ? s.toUpperCase() : undefined) }],
  ['substring', { minArgs: 2, maxArgs: 3, fn: substring }],
  ['index_of', strings2((a, b) => a.indexOf(b))],
  ['starts_with', strings2((a, b) => a.startsWith(b))],
  ['ends_with', strings2((a, b) => a.endsWith(b))],
  ['contains', strings2((a, b) => a.includes(b))],
  // Only meaningful for twin change notifications, which the kedge hub does not route yet.
  ['twin_change_includes', { minArgs: 1, maxArgs: 1, fn: () => undefined }],
]);
