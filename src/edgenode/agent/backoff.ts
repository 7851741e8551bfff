/**
 * edgeAgent's restart arithmetic (`RestartPolicyManager`): the cool-off before restart n is
 * `min(unit · 2^n, max)`, a module that used up `maxRestarts` becomes `failed`, and the count
 * resets once the module has run healthy for `healthyResetMs`.
 */

/** edgeAgent's `CoolOffTimeUnitInSeconds`: 10 s. */
export const DEFAULT_BACKOFF_UNIT_MS = 10_000;
/** edgeAgent's cool-off ceiling: 300 s. */
export const DEFAULT_BACKOFF_MAX_MS = 300_000;
/** edgeAgent's `MaxRestartCount`: 20 restarts, then `failed`. */
export const DEFAULT_MAX_RESTARTS = 20;
/** edgeAgent's `IntensiveCareTimeInMinutes`: 10 min of healthy running resets the count. */
export const DEFAULT_HEALTHY_RESET_MS = 600_000;

/** Restart arithmetic settings; all durations in milliseconds. */
export interface RestartSettings {
  /** Cool-off unit. Defaults to {@link DEFAULT_BACKOFF_UNIT_MS} (10 s). */
  backoffUnitMs: number;
  /** Cool-off ceiling. Defaults to {@link DEFAULT_BACKOFF_MAX_MS} (300 s). */
  backoffMaxMs: number;
  /** Restarts before `failed`. Defaults to {@link DEFAULT_MAX_RESTARTS} (20). */
  maxRestarts: number;
  /** Healthy run time that resets the count. Defaults to {@link DEFAULT_HEALTHY_RESET_MS} (10 min). */
  healthyResetMs: number;
}

/** edgeAgent's defaults. */
export const DEFAULT_RESTART_SETTINGS: RestartSettings = {
  backoffUnitMs: DEFAULT_BACKOFF_UNIT_MS,
  backoffMaxMs: DEFAULT_BACKOFF_MAX_MS,
  maxRestarts: DEFAULT_MAX_RESTARTS,
  healthyResetMs: DEFAULT_HEALTHY_RESET_MS,
};

/** Cool-off before restart number `restartCount` (0-based): `min(unit · 2^n, max)` ms. */
export function coolOffMs(restartCount: number, settings: RestartSettings): number {
  // 2^n overflows to Infinity for large n, which min() then caps.
  return Math.min(settings.backoffUnitMs * 2 ** restartCount, settings.backoffMaxMs);
}
