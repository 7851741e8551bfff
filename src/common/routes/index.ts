/** IoT Edge routes and the IoT Hub routing condition language: parse, format, compile. */
export type { BinaryOp, Expr, RouteAst, Sink, Value } from './ast.js';
export { BUILTINS } from './builtins.js';
export {
  compileRoute,
  DEFAULT_ROUTE_PRIORITY,
  evaluateCondition,
  sourceMatches,
  sourcePrefix,
  type CompiledRoute,
  type RouteSpec,
} from './compile.js';
export { RouteSyntaxError } from './errors.js';
export { compileExpr, EvalContext, type Evaluator, type RoutableMessage } from './evaluate.js';
export { formatExpr, formatRoute, formatSink } from './format.js';
export { parseCondition, parseRoute } from './parser.js';
export { routeFieldError, routeText, type RouteFieldError, type RouteFields } from './fields.js';
