/** Prints a route tree back as route text; `parseRoute(formatRoute(r))` equals `r`. */
import type { Expr, RouteAst, Sink, Value } from './ast.js';

function formatString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const code = ch.charCodeAt(0);
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (code < 0x20 || code === 0x7f || ch.length > 1 || code > 0x7e)
      out += [...ch].map((_, i) => `\\u${ch.charCodeAt(i).toString(16).padStart(4, '0')}`).join('');
    else out += ch;
  }
  return `${out}"`;
}

function formatValue(v: Value): string {
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  if (typeof v === 'string') return formatString(v);
  return String(v);
}

/** Formats an expression fully parenthesized, so precedence never changes on a round trip. */
export function formatExpr(expr: Expr): string {
  switch (expr.type) {
    case 'literal':
      return formatValue(expr.value);
    case 'sysprop':
      return expr.escaped ? `{$${expr.name}}` : `$${expr.name}`;
    case 'appprop':
      return expr.name;
    case 'call':
      return `${expr.name}(${expr.args.map(formatExpr).join(', ')})`;
    case 'unary':
      return expr.op === 'NOT'
        ? `(NOT ${formatExpr(expr.operand)})`
        : `(-${formatExpr(expr.operand)})`;
    case 'binary':
      return `(${formatExpr(expr.left)} ${expr.op} ${formatExpr(expr.right)})`;
  }
}

/** Formats a sink. */
export function formatSink(sink: Sink): string {
  return sink.type === 'upstream'
    ? '$upstream'
    : `BrokeredEndpoint("/modules/${sink.moduleId}/inputs/${sink.inputName}")`;
}

/** Formats a route in canonical form. */
export function formatRoute(route: RouteAst): string {
  const where = route.condition === undefined ? '' : ` WHERE ${formatExpr(route.condition)}`;
  return `FROM ${route.source}${where} INTO ${formatSink(route.sink)}`;
}
