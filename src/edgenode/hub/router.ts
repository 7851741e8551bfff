/**
 * The route table: compiled once per configuration change and swapped atomically, so a new route
 * set applies to the next message without touching connections.
 */
import {
  compileRoute,
  EvalContext,
  type CompiledRoute,
  type RoutableMessage,
  type RouteSpec,
  type Sink,
} from '../../common/routes/index.js';

/** One delivery decided by the router. */
export interface RouteTarget {
  route: string;
  sink: Sink;
  /** Endpoint key: `$upstream` or `{module}/{input}`. */
  endpoint: string;
  priority: number;
  /** 0 = inherit the store-and-forward TTL. */
  timeToLiveSecs: number;
}

function endpointKey(sink: Sink): string {
  return sink.type === 'upstream' ? '$upstream' : `${sink.moduleId}/${sink.inputName}`;
}

/** Normalizes `$edgeHub`-style routes (string or object form) to specs. */
export function routeSpecs(routes: Record<string, string | Omit<RouteSpec, 'name'>>): RouteSpec[] {
  return Object.entries(routes).map(([name, r]) =>
    typeof r === 'string' ? { name, route: r } : { name, ...r },
  );
}

export class Router {
  #routes: CompiledRoute[] = [];

  /** Compiles and swaps in a route set. Throws RouteSyntaxError (naming the route) and keeps the old set. */
  setRoutes(specs: RouteSpec[]): void {
    this.#routes = specs.map((spec) => {
      try {
        return compileRoute(spec);
      } catch (err) {
        if (err instanceof Error) err.message = `route '${spec.name}': ${err.message}`;
        throw err;
      }
    });
  }

  get size(): number {
    return this.#routes.length;
  }

  /**
   * The endpoints a message goes to. When several routes reach the same endpoint, the one with the
   * highest priority (lowest number) wins, as in edgeHub.
   */
  route(source: string, message: RoutableMessage): RouteTarget[] {
    const ctx = new EvalContext(message);
    const byEndpoint = new Map<string, RouteTarget>();
    for (const r of this.#routes) {
      if (!r.matches(source, ctx)) continue;
      const endpoint = endpointKey(r.sink);
      const seen = byEndpoint.get(endpoint);
      if (seen && seen.priority <= r.priority) continue;
      byEndpoint.set(endpoint, {
        route: r.name,
        sink: r.sink,
        endpoint,
        priority: r.priority,
        timeToLiveSecs: r.timeToLiveSecs,
      });
    }
    return [...byEndpoint.values()];
  }
}
