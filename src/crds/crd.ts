import { VERSION } from './common.js';
import type { CelRule, Schema } from './schema.js';

/** A printer column for `kubectl get`. */
export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'date' | 'boolean' | 'number';
  jsonPath: string;
  description?: string;
  /** 0 shows by default; 1 shows with `-o wide`. */
  priority?: number;
}

/** Everything that defines one kedge resource; the single source for CRDs and TS types. */
export interface CrdSource {
  group: string;
  apiVersion: string;
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  categories: string[];
  description: string;
  spec: Schema;
  status: Schema;
  /** CEL rules on the object root (they may read metadata.name). */
  rootRules: CelRule[];
  printerColumns: PrinterColumn[];
}

/** The full OpenAPI schema of an object of this kind, as served by the API server. */
export function objectSchema(source: CrdSource): Schema {
  const root: Schema = {
    type: 'object',
    description: source.description,
    properties: {
      apiVersion: { type: 'string', description: 'APIVersion of the object.' },
      kind: { type: 'string', description: 'Kind of the object.' },
      // The API server forbids anything but `type` on metadata.
      metadata: { type: 'object' },
      spec: source.spec,
      status: source.status,
    },
    required: ['spec'],
  };
  if (source.rootRules.length > 0) root['x-kubernetes-validations'] = source.rootRules;
  return root;
}

/** The CustomResourceDefinition object for a source. */
export function toCrd(source: CrdSource): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${source.plural}.${source.group}`,
      labels: { 'app.kubernetes.io/part-of': 'kedge' },
    },
    spec: {
      group: source.group,
      scope: 'Namespaced',
      names: {
        kind: source.kind,
        listKind: `${source.kind}List`,
        plural: source.plural,
        singular: source.singular,
        shortNames: source.shortNames,
        categories: source.categories,
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: source.printerColumns,
          schema: { openAPIV3Schema: objectSchema(source) },
        },
      ],
    },
  };
}
