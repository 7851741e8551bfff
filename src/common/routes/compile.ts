/**
 * Route compilation: parse once per configuration change, evaluate per message. Independent of
 * the hub so the controller can validate Route CRs with the same code.
 */
import type { RouteAst, Sink } from './ast.js';
import { compileExpr, EvalContext, type RoutableMessage } from './evaluate.js';
import { parseCondition, parseRoute } from './parser.js';

/** A route as configured: the IoT Edge string form with optional priority and TTL. */
export interface RouteSpec {
  /** Route name (the key in `$edgeHub` routes). */
  name: string;
  /** `FROM … [WHERE …] INTO …`. */
  route: string;
  /** 0 (highest) to 9. Defaults to {@link DEFAULT_ROUTE_PRIORITY}. */
  priority?: number;
  /** Per-route time to live in seconds; 0 or absent inherits the store-and-forward TTL. */
  timeToLiveSecs?: number;
}

/** Routes without a priority rank below every explicit 0–9 priority, as in edgeHub. */
export const DEFAULT_ROUTE_PRIORITY = 10;

/** A compiled route, ready for per-message evaluation. */
export interface CompiledRoute {
  name: string;
  ast: RouteAst;
  sink: Sink;
  priority: number;
  timeToLiveSecs: number;
  /** True when the message's source matches and the condition is exactly `true`. */
  matches(source: string, ctx: EvalContext): boolean;
}

/**
 * Normalizes a source for prefix matching the way edgeHub does: trailing `*` and `/` trimmed, one
 * `/` appended, lower case.
 */
export function sourcePrefix(source: string): string {
  return `${source.replace(/[*/]+$/, '')}/`.toLowerCase();
}

/** True when a message from `messageSource` (e.g. `/messages/modules/m1/outputs/o1`) matches. */
export function sourceMatches(prefix: string, messageSource: string): boolean {
  return `${messageSource}/`.toLowerCase().startsWith(prefix);
}

/** Compiles a route spec. Throws {@link RouteSyntaxError} on bad route text. */
export function compileRoute(spec: RouteSpec): CompiledRoute {
  const ast = parseRoute(spec.route);
  const prefix = sourcePrefix(ast.source);
  const condition = ast.condition === undefined ? undefined : compileExpr(ast.condition);
  return {
    name: spec.name,
    ast,
    sink: ast.sink,
    priority: spec.priority ?? DEFAULT_ROUTE_PRIORITY,
    timeToLiveSecs: spec.timeToLiveSecs ?? 0,
    matches: (source, ctx) =>
      sourceMatches(prefix, source) && (condition === undefined || condition(ctx) === true),
  };
}

/** Evaluates a bare condition against one message (tests and `kedge route check`). */
export function evaluateCondition(condition: string, message: RoutableMessage): boolean {
  return compileExpr(parseCondition(condition))(new EvalContext(message)) === true;
}
