import path from 'node:path';
import type { KubeObject } from '../controller/kube/client.js';
import { LOCAL_IMAGES } from '../localcluster/images.js';
import { PACKAGE_ROOT } from '../common/version.js';

/** Names of the objects `kedge up` creates, so teardown removes exactly these. */
export const SAMPLE = {
  namespace: 'default',
  device: 'demo',
  deployment: 'demo-telemetry',
  route: 'demo-filtered-upstream',
  label: { 'kedge.io/sample': 'kedge-up' },
} as const;

const API_VERSION = 'kedge.io/v1alpha1';

export function sampleDevice(): KubeObject {
  return {
    apiVersion: API_VERSION,
    kind: 'EdgeDevice',
    metadata: { name: SAMPLE.device, namespace: SAMPLE.namespace, labels: { ...SAMPLE.label } },
    spec: { nodeLabels: { site: 'kedge-up' } },
  };
}

/**
 * The simulated temperature sensor and the filter from `samples/modules`, written against the
 * Azure IoT device SDK. In containers they run from the offline-built image; with the process
 * runtime they run from this package's own copy of the samples.
 */
function moduleSource(runtime: 'docker' | 'process', file: string): Record<string, unknown> {
  if (runtime === 'docker') {
    return {
      image: LOCAL_IMAGES.node,
      imagePullPolicy: 'Never',
      command: ['node', `/app/modules/${file}`],
    };
  }
  return {
    image: LOCAL_IMAGES.node,
    command: [process.execPath, path.join(PACKAGE_ROOT, 'samples', 'modules', file)],
  };
}

export function sampleDeployment(runtime: 'docker' | 'process'): KubeObject {
  return {
    apiVersion: API_VERSION,
    kind: 'EdgeDeployment',
    metadata: { name: SAMPLE.deployment, namespace: SAMPLE.namespace },
    spec: {
      selector: { matchLabels: { ...SAMPLE.label } },
      modules: [
        {
          name: 'sensor',
          ...moduleSource(runtime, 'sensor.mjs'),
          env: [
            { name: 'SEND_INTERVAL_MS', value: '2000' },
            { name: 'TEMPERATURES', value: '21,24,27,30,26,22' },
          ],
          startupOrder: 1,
        },
        {
          name: 'filter',
          ...moduleSource(runtime, 'filter.mjs'),
          env: [{ name: 'THRESHOLD', value: '25' }],
          startupOrder: 2,
        },
      ],
      routes: [
        {
          name: 'sensor-to-filter',
          route:
            'FROM /messages/modules/sensor/outputs/temperatureOutput INTO BrokeredEndpoint("/modules/filter/inputs/input1")',
        },
      ],
    },
  };
}

export function sampleRoute(): KubeObject {
  return {
    apiVersion: API_VERSION,
    kind: 'Route',
    metadata: { name: SAMPLE.route, namespace: SAMPLE.namespace },
    spec: {
      deviceSelector: { matchLabels: { ...SAMPLE.label } },
      from: '/messages/modules/filter/outputs/*',
      to: '$upstream',
    },
  };
}
