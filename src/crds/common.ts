import { arr, int, named, obj, str, strEnum, stringMap, time, type Schema } from './schema.js';

/** API group of every kedge resource. */
export const GROUP = 'kedge.io';
/** The served and stored version. */
export const VERSION = 'v1alpha1';
/** `apiVersion` value of kedge objects. */
export const API_VERSION = `${GROUP}/${VERSION}`;
/** The category that makes `kubectl get kedge` list every kind. */
export const CATEGORY = 'kedge';

/** DNS-1123 label: module names become container names and route names become hub keys. */
export const DNS_LABEL_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';

export const conditionSchema = named(
  'Condition',
  obj(
    'A standard Kubernetes condition.',
    {
      type: str('Type of condition in CamelCase, for example Ready.', { maxLength: 316 }),
      status: strEnum('Status of the condition.', ['True', 'False', 'Unknown']),
      observedGeneration: int('The .metadata.generation the condition was set from.', {
        minimum: 0,
      }),
      lastTransitionTime: time('Last time the condition changed status.'),
      reason: str('One-word CamelCase reason for the last transition.', { maxLength: 1024 }),
      message: str('Human-readable details about the last transition.', { maxLength: 32768 }),
    },
    { required: ['type', 'status'] },
  ),
);

export function conditionsSchema(description: string): Schema {
  return arr(description, conditionSchema, {
    maxItems: 16,
    'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': ['type'],
  });
}

export const labelSelectorSchema = named(
  'LabelSelector',
  obj('A Kubernetes label selector. An empty selector matches every object.', {
    matchLabels: stringMap('Labels that must all be present with these values.'),
    matchExpressions: arr(
      'Set-based requirements; all must hold.',
      named(
        'LabelSelectorRequirement',
        obj(
          'One set-based requirement.',
          {
            key: str('The label key the requirement applies to.', { minLength: 1 }),
            operator: strEnum('How the key relates to the values.', [
              'In',
              'NotIn',
              'Exists',
              'DoesNotExist',
            ]),
            values: arr(
              'Values for In and NotIn; must be empty for Exists and DoesNotExist.',
              str('A label value.'),
            ),
          },
          {
            required: ['key', 'operator'],
            'x-kubernetes-validations': [
              {
                rule: "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) : (!has(self.values) || size(self.values) == 0)",
                message:
                  'values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist',
              },
            ],
          },
        ),
      ),
      { maxItems: 32 },
    ),
  }),
);

/** The structured or string route shared by Route and EdgeDeployment.routes[]. */
export function routeFields(): Record<string, Schema> {
  return {
    route: str(
      'The route in IoT Edge syntax, for example `FROM /messages/modules/sensor/outputs/* WHERE $body.temperature > 25 INTO $upstream`. Give either this or from/to.',
      { minLength: 1, maxLength: 4096 },
    ),
    from: str(
      'Structured form: the message source, for example `/messages/modules/sensor/outputs/*`. Matched by prefix.',
      { minLength: 1, maxLength: 1024 },
    ),
    condition: str(
      'Structured form: an IoT Hub routing query condition, for example `$body.temperature > 25`. Omit to route every message.',
      { minLength: 1, maxLength: 2048 },
    ),
    to: str(
      'Structured form: the sink, `$upstream` or `BrokeredEndpoint("/modules/{module}/inputs/{input}")`.',
      { minLength: 1, maxLength: 1024 },
    ),
    priority: int('Route priority, 0 (highest) to 9 (lowest). Defaults to 0.', {
      minimum: 0,
      maximum: 9,
    }),
    timeToLiveSecs: int(
      'How long a message on this route may wait for delivery, in seconds. Defaults to the hub store-and-forward TTL.',
      { minimum: 0, maximum: 31536000 },
    ),
  };
}

/** CEL rules that make a route either a string or structured, never both. */
export const routeRules = [
  {
    rule: 'has(self.route) != (has(self.from) || has(self.to) || has(self.condition))',
    message:
      'give the route either as a string (route) or as structured fields (from, condition, to), not both and not neither',
  },
  {
    rule: 'has(self.route) || (has(self.from) && has(self.to))',
    message: 'a structured route needs both from and to',
  },
];
