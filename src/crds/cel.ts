import { isCelError, run, type CelInput } from '@bufbuild/cel';
import type { CelRule, Schema } from './schema.js';

/** One failed CEL rule: where and why. */
export interface CelViolation {
  path: string;
  message: string;
}

/**
 * Evaluates every `x-kubernetes-validations` rule in `schema` against `value`, as the API server
 * does: each rule runs with `self` bound to the node that carries it, for every instance present.
 */
export function checkCelRules(schema: Schema, value: unknown, path: string): CelViolation[] {
  const violations: CelViolation[] = [];
  walk(schema, value, path, violations);
  return violations;
}

function walk(schema: Schema, value: unknown, path: string, out: CelViolation[]): void {
  if (value === undefined || value === null) return;
  for (const rule of schema['x-kubernetes-validations'] ?? []) {
    const violation = evaluate(rule, schema, value, path);
    if (violation) out.push(violation);
  }
  if (Array.isArray(value) && schema.items) {
    value.forEach((item, i) => walk(schema.items!, item, `${path}[${i}]`, out));
  } else if (isRecord(value) && schema.properties) {
    for (const [key, child] of Object.entries(schema.properties)) {
      walk(child, value[key], path ? `${path}.${key}` : key, out);
    }
  }
}

function evaluate(
  rule: CelRule,
  schema: Schema,
  value: unknown,
  path: string,
): CelViolation | undefined {
  const result = run(rule.rule, { self: toCel(schema, value) as CelInput });
  const reportPath = rule.fieldPath ? `${path}${rule.fieldPath}`.replace(/^\./, '') : path;
  if (isCelError(result))
    return { path: reportPath, message: `${rule.message} (${result.message})` };
  return result === true ? undefined : { path: reportPath, message: rule.message };
}

/** Converts JSON to CEL values: objects become maps and schema integers become CEL ints. */
export function toCel(schema: Schema | undefined, value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => toCel(schema?.items, v));
  if (isRecord(value)) {
    const entries = Object.entries(value).map(([k, v]): [string, unknown] => {
      const child = schema?.properties?.[k] ?? additional(schema);
      return [k, toCel(child, v)];
    });
    return new Map(entries);
  }
  const integral = schema?.type === 'integer' || schema?.['x-kubernetes-int-or-string'] === true;
  if (typeof value === 'number' && integral && Number.isInteger(value)) return BigInt(value);
  return value;
}

function additional(schema: Schema | undefined): Schema | undefined {
  const extra = schema?.additionalProperties;
  return typeof extra === 'object' ? extra : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
