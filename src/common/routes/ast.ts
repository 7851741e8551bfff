/** The syntax tree of a route and of its condition. */

/** A literal value of the condition language. `undefined` is a value, as in IoT Hub queries. */
export type Value = string | number | boolean | null | undefined;

export type BinaryOp =
  | '*'
  | '/'
  | '%'
  | '+'
  | '-'
  | '||'
  | '<'
  | '<='
  | '>'
  | '>='
  | '='
  | '!='
  | '<>'
  | 'AND'
  | 'OR'
  | '??';

/** A condition expression. */
export type Expr =
  | { type: 'literal'; value: Value }
  /** `$name` (or `{$name}` when `escaped`): system property or `$body.` query. `name` has no `$`. */
  | { type: 'sysprop'; name: string; escaped: boolean }
  /** A bare name: an application property. */
  | { type: 'appprop'; name: string }
  /** A built-in function call; `name` is lower case. */
  | { type: 'call'; name: string; args: Expr[] }
  | { type: 'unary'; op: '-' | 'NOT'; operand: Expr }
  | { type: 'binary'; op: BinaryOp; left: Expr; right: Expr };

/** Where a route sends messages. */
export type Sink = { type: 'upstream' } | { type: 'brokered'; moduleId: string; inputName: string };

/** A parsed route: `[SELECT *] FROM source [WHERE condition] INTO sink`. */
export interface RouteAst {
  /** The source path as written, e.g. `/messages/modules/sensor/outputs/*`. */
  source: string;
  condition?: Expr;
  sink: Sink;
}
