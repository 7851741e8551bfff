/**
 * Routes as the Route and EdgeDeployment resources hold them: a `route` string, or the
 * structured `from` / `condition` / `to` fields. One text for both, and errors that point into
 * the field the user wrote.
 */
import { RouteSyntaxError } from './errors.js';
import { parseRoute } from './parser.js';

/** The route fields of a Route spec or an EdgeDeployment `spec.routes[]` entry. */
export interface RouteFields {
  route?: string;
  from?: string;
  condition?: string;
  to?: string;
}

/** The IoT Edge route text of a string or structured route. */
export function routeText(r: RouteFields): string {
  if (r.route) return r.route;
  return `FROM ${r.from ?? ''}${r.condition ? ` WHERE ${r.condition}` : ''} INTO ${r.to ?? ''}`;
}

/** A route that does not compile: the field it is in, the offset in that field, and why. */
export interface RouteFieldError {
  /** `route`, `from`, `condition` or `to`. */
  field: keyof RouteFields;
  /** Zero-based character offset in that field's text. */
  position: number;
  message: string;
}

/** Why the route does not compile, pointing into the field that holds the error; else undefined. */
export function routeFieldError(r: RouteFields): RouteFieldError | undefined {
  try {
    parseRoute(routeText(r));
    return undefined;
  } catch (err) {
    if (!(err instanceof RouteSyntaxError)) throw err;
    return { ...locateInFields(r, err.position), message: err.message };
  }
}

/** Maps an offset in {@link routeText} back to the structured field it falls in. */
function locateInFields(
  r: RouteFields,
  position: number,
): { field: keyof RouteFields; position: number } {
  if (r.route) return { field: 'route', position };
  const parts: [keyof RouteFields, number, number][] = [];
  let at = 'FROM '.length;
  parts.push(['from', at, (r.from ?? '').length]);
  at += (r.from ?? '').length;
  if (r.condition) {
    at += ' WHERE '.length;
    parts.push(['condition', at, r.condition.length]);
    at += r.condition.length;
  }
  at += ' INTO '.length;
  parts.push(['to', at, (r.to ?? '').length]);
  const part =
    parts.find(([, start, length]) => position >= start && position < start + length) ??
    parts.findLast(([, start]) => position >= start) ??
    parts[0]!;
  return { field: part[0], position: Math.max(0, Math.min(position - part[1], part[2])) };
}
