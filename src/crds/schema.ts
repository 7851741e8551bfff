/**
 * Small builders for structural OpenAPI v3 schemas. They force a description on every field and
 * let a schema node carry a TypeScript type name for the type generator without putting any
 * unknown key into the CRD itself.
 */

/** A structural schema node, as the API server accepts it in a CRD. */
export interface Schema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  additionalProperties?: Schema | boolean;
  enum?: (string | number)[];
  format?: string;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  anyOf?: Schema[];
  nullable?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: 'atomic' | 'granular';
  'x-kubernetes-validations'?: CelRule[];
}

/** A CEL validation rule, checked by the API server and by `kedge validate`. */
export interface CelRule {
  rule: string;
  message: string;
  /** JSONPath-like field the error is reported on, relative to the node carrying the rule. */
  fieldPath?: string;
  reason?:
    'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

const typeNames = new WeakMap<Schema, string>();

/** The TypeScript type name attached to a schema node, if any. */
export function typeNameOf(schema: Schema): string | undefined {
  return typeNames.get(schema);
}

/** Attach a TypeScript type name to a schema node (used by the type generator only). */
export function named<T extends Schema>(name: string, schema: T): T {
  typeNames.set(schema, name);
  return schema;
}

type Extra = Omit<Schema, 'type' | 'description'>;

export function str(description: string, extra: Extra = {}): Schema {
  return { type: 'string', description, ...extra };
}

export function int(description: string, extra: Extra = {}): Schema {
  return { type: 'integer', description, ...extra };
}

export function bool(description: string): Schema {
  return { type: 'boolean', description };
}

export function time(description: string): Schema {
  return { type: 'string', format: 'date-time', description };
}

export function strEnum(description: string, values: readonly string[]): Schema {
  return { type: 'string', description, enum: [...values] };
}

export function obj(
  description: string,
  properties: Record<string, Schema>,
  extra: Extra = {},
): Schema {
  return { type: 'object', description, properties, ...extra };
}

export function arr(description: string, items: Schema, extra: Extra = {}): Schema {
  return { type: 'array', description, items, ...extra };
}

export function stringMap(description: string, extra: Extra = {}): Schema {
  return { type: 'object', description, additionalProperties: { type: 'string' }, ...extra };
}

/** An object whose content is free-form (module twins, Docker create options). */
export function freeform(description: string): Schema {
  return { type: 'object', description, 'x-kubernetes-preserve-unknown-fields': true };
}

/** Any JSON value: object, array, string, number, boolean (a twin property at a path). */
export function anyJson(description: string): Schema {
  return { description, 'x-kubernetes-preserve-unknown-fields': true };
}

/** A count or a percentage (`25%`), as a Deployment's `maxUnavailable` takes it. */
export function intOrPercent(description: string, rules: CelRule[]): Schema {
  return {
    description,
    'x-kubernetes-int-or-string': true,
    anyOf: [{ type: 'integer' }, { type: 'string' }],
    'x-kubernetes-validations': rules,
  };
}

/** A Kubernetes resource quantity such as `500m` or `128Mi`. */
export function quantity(description: string): Schema {
  return {
    description,
    'x-kubernetes-int-or-string': true,
    anyOf: [{ type: 'integer' }, { type: 'string' }],
    pattern:
      '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$',
  };
}
