import {
  API_VERSION,
  CATEGORY,
  GROUP,
  conditionsSchema,
  labelSelectorSchema,
  routeFields,
  routeRules,
} from './common.js';
import type { CrdSource } from './crd.js';
import { int, named, obj, str } from './schema.js';

const spec = named(
  'RouteSpec',
  obj(
    'One message route for the hubs of the matching devices.',
    { deviceSelector: labelSelectorSchema, ...routeFields() },
    { required: ['deviceSelector'], 'x-kubernetes-validations': routeRules },
  ),
);

const status = named(
  'RouteStatus',
  obj('Validation and rollout state of the route.', {
    observedGeneration: int('The .metadata.generation this status was computed from.'),
    matchedDevices: int('Devices the deviceSelector matches.', { minimum: 0 }),
    error: obj('The parse error when the route is invalid.', {
      message: str('What is wrong.'),
      position: int('Zero-based character offset of the error in the route text.'),
    }),
    conditions: conditionsSchema('Valid and Ready conditions.'),
  }),
);

export const route: CrdSource = {
  group: GROUP,
  apiVersion: API_VERSION,
  kind: 'Route',
  plural: 'routes',
  singular: 'route',
  shortNames: ['rt', 'kroute'],
  categories: [CATEGORY],
  description:
    'A message route applied to the hubs of every EdgeDevice its deviceSelector matches.',
  spec,
  status,
  rootRules: [],
  printerColumns: [
    { name: 'Route', type: 'string', jsonPath: '.spec.route' },
    { name: 'From', type: 'string', jsonPath: '.spec.from', priority: 1 },
    { name: 'To', type: 'string', jsonPath: '.spec.to', priority: 1 },
    { name: 'Priority', type: 'integer', jsonPath: '.spec.priority' },
    { name: 'Valid', type: 'string', jsonPath: '.status.conditions[?(@.type=="Valid")].status' },
    { name: 'Devices', type: 'integer', jsonPath: '.status.matchedDevices' },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
};
