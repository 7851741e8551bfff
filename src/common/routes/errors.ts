import { ErrorCode, KedgeError } from '../errors.js';

/**
 * A route that does not parse or does not compile. `position` is the zero-based character offset
 * in the route text, as the Route CR's `status.error.position` reports it.
 */
export class RouteSyntaxError extends KedgeError {
  readonly position: number;

  constructor(message: string, position: number) {
    super(ErrorCode.InvalidRoute, message);
    this.name = 'RouteSyntaxError';
    this.position = position;
  }
}
