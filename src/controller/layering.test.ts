import type { DesiredPropertyPath, EdgeDeployment, EdgeModule } from '../crds/index.js';
import { resolveLayers, withLayeredProperties } from './layering.js';

function deployment(
  name: string,
  priority: number,
  spec: { modules?: EdgeModule[]; desiredProperties?: DesiredPropertyPath[] },
): EdgeDeployment {
  return {
    apiVersion: 'kedge.io/v1alpha1',
    kind: 'EdgeDeployment',
    metadata: { name, namespace: 'ns', uid: `uid-${name}` },
    spec: { selector: {}, priority, ...spec },
  };
}

/** The merged twin of `module` on a device that runs `deployments`. */
function twinOf(module: string, deployments: EdgeDeployment[]): unknown {
  const claim = resolveLayers(deployments).winners.get(module)!;
  return withLayeredProperties(claim, deployments).desiredProperties;
}

const sensor = (desiredProperties?: Record<string, unknown>): EdgeModule => ({
  name: 'SimulatedTemperatureSensor',
  image: 'sensor:1',
  ...(desiredProperties ? { desiredProperties } : {}),
});

describe('withLayeredProperties', () => {
  it('merges layered paths over the base twin, each path won by the higher priority', () => {
    const base = deployment('base', 0, {
      modules: [sensor({ SendData: true, layeredProperties: { Site: 'base', Keep: 1 } })],
    });
    const layerA = deployment('layer-a', 10, {
      desiredProperties: [
        { module: 'SimulatedTemperatureSensor', path: 'layeredProperties.Site', value: 'lyon' },
        { module: 'SimulatedTemperatureSensor', path: 'alerts', value: { max: 80 } },
      ],
    });
    const layerB = deployment('layer-b', 20, {
      desiredProperties: [{ module: 'SimulatedTemperatureSensor', path: 'alerts.max', value: 90 }],
    });
    expect(twinOf('SimulatedTemperatureSensor', [layerB, base, layerA])).toEqual({
      SendData: true,
      layeredProperties: { Site: 'lyon', Keep: 1 },
      alerts: { max: 90 },
    });
  });

  it('lets a higher-priority wider path replace what lower ones set under it', () => {
    const base = deployment('base', 50, { modules: [sensor({ only: 'base' })] });
    const layer = deployment('layer', 10, {
      desiredProperties: [{ module: 'SimulatedTemperatureSensor', path: 'extra', value: 1 }],
    });
    expect(twinOf('SimulatedTemperatureSensor', [base, layer])).toEqual({ only: 'base' });
    const wide = deployment('wide', 30, {
      desiredProperties: [{ module: 'SimulatedTemperatureSensor', path: 'a', value: { b: 1 } }],
    });
    const narrow = deployment('narrow', 20, {
      desiredProperties: [{ module: 'SimulatedTemperatureSensor', path: 'a.c', value: 2 }],
    });
    const twin = twinOf('SimulatedTemperatureSensor', [
      deployment('b0', 0, { modules: [sensor()] }),
      narrow,
      wide,
    ]);
    expect(twin).toEqual({ a: { b: 1 } });
  });

  it('breaks priority ties by name, the name that sorts first winning, as for modules', () => {
    const base = deployment('base', 0, { modules: [sensor()] });
    const a = deployment('aaa', 5, {
      desiredProperties: [{ module: 'SimulatedTemperatureSensor', path: 'x', value: 'aaa' }],
    });
    const z = deployment('zzz', 5, {
      desiredProperties: [{ module: 'SimulatedTemperatureSensor', path: 'x', value: 'zzz' }],
    });
    expect(twinOf('SimulatedTemperatureSensor', [z, base, a])).toEqual({ x: 'aaa' });
  });

  it('keeps the module object itself when no entry names it, and never mutates the inputs', () => {
    const own = { a: { b: 1 } };
    const base = deployment('base', 0, { modules: [sensor(own), { name: 'other', image: 'o:1' }] });
    const layer = deployment('layer', 1, {
      desiredProperties: [{ module: 'SimulatedTemperatureSensor', path: 'a.c', value: [1, 2] }],
    });
    const claim = resolveLayers([base, layer]).winners.get('other')!;
    expect(withLayeredProperties(claim, [base, layer])).toBe(base.spec.modules![1]);
    expect(twinOf('SimulatedTemperatureSensor', [base, layer])).toEqual({ a: { b: 1, c: [1, 2] } });
    expect(own).toEqual({ a: { b: 1 } });
  });
});
