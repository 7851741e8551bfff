import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { routeFieldError, type RouteFields } from '../common/routes/index.js';
import { checkCelRules } from './cel.js';
import { objectSchema, type CrdSource } from './crd.js';
import { API_VERSION, CRD_SOURCES } from './index.js';
import type { Schema } from './schema.js';

/** One problem with one object, named by its field path. */
export interface ValidationProblem {
  /** Field path such as `spec.modules[0].name`, or empty for the object itself. */
  path: string;
  message: string;
}

/** RFC 1123 subdomain: what the API server demands of object names. */
const NAME_PATTERN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const MAX_NAME_LENGTH = 253;

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const validators = new Map<string, ValidateFunction>();

/** Validates a kedge object offline, the way the API server would (schema, CEL rules, name). */
export function validateObject(obj: unknown): ValidationProblem[] {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    return [{ path: '', message: 'document is not an object' }];
  }
  const doc = obj as Record<string, unknown>;
  const source = CRD_SOURCES.find((s) => s.kind === doc.kind);
  if (!source) {
    const known = CRD_SOURCES.map((s) => s.kind).join(', ');
    return [
      {
        path: 'kind',
        message: `unknown kind ${JSON.stringify(doc.kind)}; expected one of ${known}`,
      },
    ];
  }
  if (doc.apiVersion !== API_VERSION) {
    return [
      {
        path: 'apiVersion',
        message: `must be ${API_VERSION}, got ${JSON.stringify(doc.apiVersion)}`,
      },
    ];
  }
  const problems = [...checkName(doc.metadata), ...checkSchema(source, doc)];
  if (problems.length > 0) return problems;
  return checkCelRules(objectSchema(source), doc, '');
}

/**
 * Routes of a Route or EdgeDeployment that do not compile: the field, the offset in it, and why.
 * The API server accepts them (no CEL rule parses routes); the controller reports them as the
 * Route's `Valid=False` and the EdgeDeployment's `RoutesValid=False`. Call it on an object that
 * {@link validateObject} accepts.
 */
export function routeProblems(doc: Record<string, unknown>): ValidationProblem[] {
  if (doc.kind !== 'Route' && doc.kind !== 'EdgeDeployment') return [];
  const spec = (doc.spec ?? {}) as Record<string, unknown>;
  const routes: [string, RouteFields][] =
    doc.kind === 'Route'
      ? [['spec', spec]]
      : ((spec.routes as RouteFields[] | undefined) ?? []).map((r, i) => [`spec.routes[${i}]`, r]);
  return routes.flatMap(([path, fields]) => {
    const error = routeFieldError(fields);
    if (!error) return [];
    return [
      {
        path: `${path}.${error.field}`,
        message: `route does not compile at offset ${error.position}: ${error.message}`,
      },
    ];
  });
}

function checkName(metadata: unknown): ValidationProblem[] {
  const name = (metadata as { name?: unknown } | undefined)?.name;
  if (typeof name !== 'string' || name === '') {
    return [{ path: 'metadata.name', message: 'required value: name is required' }];
  }
  if (name.length > MAX_NAME_LENGTH || !NAME_PATTERN.test(name)) {
    return [
      {
        path: 'metadata.name',
        message: `invalid value ${JSON.stringify(name)}: must be a lowercase RFC 1123 subdomain`,
      },
    ];
  }
  return [];
}

function checkSchema(source: CrdSource, doc: unknown): ValidationProblem[] {
  const validate = validatorFor(source);
  if (validate(doc)) return [];
  return (validate.errors ?? []).map(describeAjvError);
}

function validatorFor(source: CrdSource): ValidateFunction {
  let validate = validators.get(source.kind);
  if (!validate) {
    const ajv = new Ajv({ allErrors: true, strict: false });
    addFormats(ajv);
    validate = ajv.compile(strictCopy(objectSchema(source)));
    validators.set(source.kind, validate);
  }
  return validate;
}

/**
 * A copy of the schema for ajv: objects with declared properties reject unknown fields (as
 * `kubectl apply` does with strict field validation); int-or-string and CEL keys are dropped.
 */
function strictCopy(schema: Schema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key.startsWith('x-kubernetes-')) continue;
    if (key === 'properties') {
      out.properties = Object.fromEntries(
        Object.entries(value as Record<string, Schema>).map(([k, v]) => [k, strictCopy(v)]),
      );
    } else if (key === 'items' || (key === 'additionalProperties' && typeof value === 'object')) {
      out[key] = strictCopy(value as Schema);
    } else if (key === 'anyOf') {
      out.anyOf = (value as Schema[]).map(strictCopy);
    } else {
      out[key] = value;
    }
  }
  if (schema.properties && schema.additionalProperties === undefined) {
    out.additionalProperties = false;
  }
  return out;
}

function describeAjvError(error: ErrorObject): ValidationProblem {
  const base = jsonPointerToPath(error.instancePath);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return { path: join(base, String(params.missingProperty)), message: 'required value' };
    case 'additionalProperties':
      return { path: join(base, String(params.additionalProperty)), message: 'unknown field' };
    case 'enum':
      return {
        path: base,
        message: `must be one of ${(params.allowedValues as unknown[]).join(', ')}`,
      };
    default:
      return { path: base, message: error.message ?? error.keyword };
  }
}

function jsonPointerToPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : join(acc, part)), '');
}

function join(base: string, key: string): string {
  return base ? `${base}.${key}` : key;
}
