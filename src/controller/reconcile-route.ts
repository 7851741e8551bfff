import { parseRoute, RouteSyntaxError } from '../common/routes/index.js';
import type { Route, RouteStatus } from '../crds/index.js';
import { keyFor, type ControllerContext } from './context.js';
import { mergeConditions, sameConditions, type ConditionInput } from './conditions.js';
import { routeText } from './desired.js';
import { Resources, type KubeObject } from './kube/client.js';
import { matchesSelector } from './selector.js';
import type { ReconcileResult } from './workqueue.js';

/** The parse error of a route, or undefined when it is valid. */
export function routeError(text: string): { message: string; position: number } | undefined {
  try {
    parseRoute(text);
    return undefined;
  } catch (err) {
    if (err instanceof RouteSyntaxError) return { message: err.message, position: err.position };
    return { message: (err as Error).message, position: 0 };
  }
}

/** Validates a Route (the Valid condition carries the parser's message and position). */
export async function reconcileRoute(
  ctx: ControllerContext,
  key: string,
): Promise<ReconcileResult> {
  const route = ctx.informers.routes.get(key);
  if (!route) return {};
  const text = routeText(route.spec);
  const error = routeError(text);
  const devices = ctx.informers.devices
    .list()
    .filter(
      (d) =>
        d.metadata.namespace === route.metadata.namespace &&
        matchesSelector(route.spec.deviceSelector, d.metadata.labels),
    );
  for (const d of devices) ctx.enqueue.desired(keyFor(d.metadata.namespace, d.metadata.name));
  const valid: ConditionInput = error
    ? {
        type: 'Valid',
        status: 'False',
        reason: 'ParseError',
        message: `${error.message} (at position ${error.position} of "${text}")`,
      }
    : { type: 'Valid', status: 'True', reason: 'Parsed', message: 'the route compiles' };
  const ready: ConditionInput = error
    ? {
        type: 'Ready',
        status: 'False',
        reason: 'Invalid',
        message: 'the route does not compile and is not applied',
      }
    : {
        type: 'Ready',
        status: 'True',
        reason: 'Applied',
        message: `applied to ${devices.length} device(s)`,
      };
  const status: RouteStatus = {
    observedGeneration: route.metadata.generation,
    matchedDevices: devices.length,
    ...(error ? { error } : {}),
    conditions: mergeConditions(
      route.status?.conditions,
      [valid, ready],
      route.metadata.generation,
    ),
  };
  await writeStatus(ctx, route, status);
  return {};
}

async function writeStatus(
  ctx: ControllerContext,
  route: Route & KubeObject,
  status: RouteStatus,
): Promise<void> {
  const { conditions: c1, ...r1 } = route.status ?? {};
  const { conditions: c2, ...r2 } = status;
  if (sameConditions(c1, c2) && JSON.stringify(r1) === JSON.stringify(r2)) return;
  // A merge patch cannot remove `error` by omission; null clears it.
  const patch = { status: { ...status, error: status.error ?? null } };
  await ctx.client.patch(Resources.routes(route.metadata.namespace), route.metadata.name!, patch, {
    subresource: 'status',
  });
}
