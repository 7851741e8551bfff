import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { parseAllDocuments } from 'yaml';
import { isKedgeError, ErrorCode } from '../../common/errors.js';
import { parseRoute } from '../../common/routes/index.js';
import { validateObject } from '../validate.js';
import { importManifest, parseSelector, toYaml } from './index.js';
import { isDnsLabel, toDnsLabel, uniqueLabels } from './names.js';

const FIXTURES = path.resolve('test/fixtures/iotedge');
const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(path.join(FIXTURES, name), 'utf8')) as unknown;

/** The smallest valid manifest with the given modules, routes and twins. */
function manifest(parts: {
  modules?: Record<string, unknown>;
  routes?: Record<string, unknown>;
  hub?: Record<string, unknown>;
  agentSettings?: Record<string, unknown>;
  twins?: Record<string, unknown>;
}): Record<string, unknown> {
  return {
    modulesContent: {
      $edgeAgent: {
        'properties.desired': {
          schemaVersion: '1.1',
          runtime: {
            type: 'docker',
            ...(parts.agentSettings ? { settings: parts.agentSettings } : {}),
          },
          modules: parts.modules ?? {},
        },
      },
      $edgeHub: {
        'properties.desired': { schemaVersion: '1.1', routes: parts.routes ?? {}, ...parts.hub },
      },
      ...parts.twins,
    },
  };
}

describe('kedge manifest import', () => {
  it('converts the SimulatedTemperatureSensor + filter sample into a valid EdgeDeployment', () => {
    const { objects, warnings } = importManifest(fixture('simulated-temperature-sensor.json'), {
      name: 'tempsensor',
      namespace: 'demo',
      selector: { site: 'lyon' },
    });
    expect(objects).toHaveLength(1);
    const d = objects[0]!;
    expect(validateObject(d)).toEqual([]);
    expect(d.metadata).toEqual({ name: 'tempsensor', namespace: 'demo' });
    expect(d.spec.selector).toEqual({ matchLabels: { site: 'lyon' } });
    expect(d.spec.modules!.map((m) => [m.name, m.moduleId])).toEqual([
      ['simulated-temperature-sensor', 'SimulatedTemperatureSensor'],
      ['filtermodule', undefined],
    ]);
    expect(d.spec.modules![0]!.env).toEqual([
      { name: 'MessageCount', value: '-1' },
      { name: 'SendData', value: 'true' },
    ]);
    expect(d.spec.modules![1]!.desiredProperties).toEqual({ TemperatureThreshold: 25 });
    expect(d.spec.routes).toEqual([
      {
        name: 'filtermodule-to-io-thub',
        route: 'FROM /messages/modules/filtermodule/outputs/* INTO $upstream',
      },
      {
        name: 'sensor-tofiltermodule',
        route:
          'FROM /messages/modules/SimulatedTemperatureSensor/outputs/temperatureOutput INTO BrokeredEndpoint("/modules/filtermodule/inputs/input1")',
      },
    ]);
    expect(d.spec.hub).toEqual({ storeAndForward: { timeToLiveSecs: 7200 } });
    expect(d.spec.imagePullSecrets).toEqual([{ name: 'tempsensor-registry' }]);
    expect(warnings.join('\n')).toMatch(
      /"SimulatedTemperatureSensor" runs in container "simulated-temperature-sensor" .*its module id stays "SimulatedTemperatureSensor"/,
    );
    expect(warnings.join('\n')).toMatch(/systemModules\.edgeHub/);
    expect(warnings.join('\n')).toMatch(/minDockerVersion/);
  });

  it('keeps module ids unique in the CRD rules (moduleId, else name)', () => {
    const { objects } = importManifest(fixture('simulated-temperature-sensor.json'), { name: 't' });
    const d = structuredClone(objects[0]!);
    d.spec.modules![1]!.moduleId = 'SimulatedTemperatureSensor';
    const messages = (): string =>
      validateObject(d)
        .map((p) => `${p.path}: ${p.message}`)
        .join('\n');
    expect(messages()).toMatch(/module ids \(moduleId, else name\) must be unique/);
    d.spec.modules![1]!.moduleId = 'Filter:Module';
    expect(messages()).toMatch(/modules\[1\]\.moduleId/);
  });

  it('never puts registry passwords into the output, and says how to create the Secret', () => {
    const doc = fixture('multi-module.json');
    const { objects, warnings } = importManifest(doc, { registrySecret: 'pull-creds' });
    const yaml = toYaml(objects);
    expect(yaml).not.toMatch(/not-a-real-password/);
    expect(warnings.join('\n')).not.toMatch(/not-a-real-password/);
    expect(objects[0]!.spec.imagePullSecrets).toEqual([{ name: 'pull-creds' }]);
    const registry = warnings.find((w) => w.startsWith('registry credentials'))!;
    expect(registry).toMatch(/contoso\.azurecr\.io, registry\.partner\.example:5000/);
    expect(registry).toMatch(/kubernetes\.io\/dockerconfigjson/);
  });

  it('converts chunked, string and object createOptions, pull policies, status and startupOrder', () => {
    const { objects } = importManifest(fixture('multi-module.json'), { name: 'plant' });
    const byName = new Map(objects[0]!.spec.modules!.map((m) => [m.name, m]));
    expect(validateObject(objects[0])).toEqual([]);
    const modbus = byName.get('modbus-tcp')!;
    expect(modbus.createOptions).toMatchObject({
      Hostname: 'modbus',
      Labels: { 'com.contoso.role': 'field-bus', 'com.contoso.site': 'lyon' },
      Env: ['MODBUS_POLL_MS=1000', 'MODBUS_UNIT=1'],
    });
    expect(modbus.restartPolicy).toBe('on-failure');
    expect(modbus.startupOrder).toBe(1);
    expect(byName.get('temp-sensor')!.createOptions).toEqual({
      HostConfig: {
        LogConfig: { Type: 'json-file', Config: { 'max-size': '4m', 'max-file': '3' } },
      },
    });
    const detector = byName.get('anomaly-detector')!;
    expect(detector).toMatchObject({
      imagePullPolicy: 'Never',
      desiredStatus: 'stopped',
      restartPolicy: 'on-unhealthy',
      createOptions: { HostConfig: { Memory: 268435456, NanoCpus: 500000000 } },
      env: [
        { name: 'MODEL_PATH', value: '/models/current' },
        { name: 'THRESHOLD', value: '0.85' },
      ],
    });
    expect(byName.get('azureblobstorageoniotedge')!.imagePullPolicy).toBe('IfNotPresent');
    const gateway = byName.get('partner-gateway')!;
    expect(gateway.image).toBe(
      'registry.partner.example:5000/gateway:3.2@sha256:4f1e5a3c0d8b9e7f6a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f',
    );
    // edgeAgent's default restart policy is written out, because kedge's default differs.
    expect(gateway.restartPolicy).toBe('on-unhealthy');
    expect(gateway.desiredStatus).toBeUndefined();
  });

  it('converts route objects with priority and TTL, keeping the module ids routes name', () => {
    const { objects, warnings } = importManifest(fixture('multi-module.json'), { name: 'plant' });
    const routes = new Map(objects[0]!.spec.routes!.map((r) => [r.name, r]));
    expect(routes.get('sensor-to-detector')).toEqual({
      name: 'sensor-to-detector',
      route:
        'FROM /messages/modules/tempSensor/outputs/* WHERE $body.machine.temperature > 20 INTO BrokeredEndpoint("/modules/anomaly_detector/inputs/telemetry")',
      priority: 1,
      timeToLiveSecs: 600,
    });
    expect(routes.get('alerts-upstream')).toMatchObject({ priority: 0, timeToLiveSecs: 86400 });
    expect(routes.get('all-to-cloud')).toEqual({
      name: 'all-to-cloud',
      route: 'FROM /messages/* INTO $upstream',
      priority: 9,
    });
    for (const r of routes.values()) expect(() => parseRoute(r.route!)).not.toThrow();
    expect(objects[0]!.spec.hub).toEqual({ storeAndForward: { timeToLiveSecs: 14400 } });
    const text = warnings.join('\n');
    // A $connectionModuleId condition keeps working: the module id is still ModbusTCP.
    expect(routes.get('modbus-upstream')!.route).toContain("$connectionModuleId = 'ModbusTCP'");
    expect(text).not.toMatch(/modbus-upstream/);
    const ids = objects[0]!.spec.modules!.map((m) => m.moduleId ?? m.name);
    for (const r of routes.values())
      for (const [, id] of r.route!.matchAll(/\/modules\/([A-Za-z0-9_-]+)/g))
        expect(ids).toContain(id);
    expect(text).toMatch(/storeLimits\.maxSizeBytes 1073741824 not carried over/);
    expect(text).toMatch(/loggingOptions not carried over/);
    expect(text).toMatch(/twin of "tempSensor": \$version not carried over/);
    expect(
      objects[0]!.spec.modules!.find((m) => m.name === 'temp-sensor')!.desiredProperties,
    ).toEqual({
      SendInterval: 5,
    });
  });

  it('warns about a route that does not parse but still carries it, so the status can report it', () => {
    const { objects, warnings } = importManifest(
      manifest({ routes: { bad: 'FROM /messages/* WHERE INTO $upstream' } }),
      { name: 'x' },
    );
    expect(objects[0]!.spec.routes).toEqual([
      { name: 'bad', route: 'FROM /messages/* WHERE INTO $upstream' },
    ]);
    expect(warnings.join('\n')).toMatch(/route "bad" does not parse/);
  });

  it('names a twin without a module, and clamps an out-of-range store TTL', () => {
    const { objects, warnings } = importManifest(
      manifest({
        modules: { a: { settings: { image: 'busybox' } } },
        hub: { storeAndForwardConfiguration: { timeToLiveSecs: -1 } },
        twins: { ghost: { 'properties.desired': { x: 1 } } },
      }),
      { name: 'x' },
    );
    expect(objects[0]!.spec.hub).toEqual({ storeAndForward: { timeToLiveSecs: 31536000 } });
    expect(warnings.join('\n')).toMatch(/twin of "ghost" not carried over/);
    expect(warnings.join('\n')).toMatch(/timeToLiveSecs -1 is outside/);
  });

  it('reads an at-scale deployment: id, priority and a simple tags targetCondition', () => {
    const inner = manifest({ modules: { sensor: { settings: { image: 'busybox' } } } });
    const { objects, warnings } = importManifest({
      id: 'Sensors_Prod',
      priority: 10,
      targetCondition: "tags.environment='prod' AND tags.site='lyon'",
      labels: { team: 'ops' },
      content: inner,
    });
    expect(objects[0]!.metadata.name).toBe('sensors-prod');
    expect(objects[0]!.spec.priority).toBe(10);
    expect(objects[0]!.spec.selector).toEqual({
      matchLabels: { environment: 'prod', site: 'lyon' },
    });
    expect(warnings.join('\n')).toMatch(/deployment labels not carried over/);
    const complex = importManifest({
      id: 'x',
      targetCondition: "tags.environment='prod' OR properties.reported.lastDesiredStatus.code=200",
      content: inner,
    });
    expect(complex.objects[0]!.spec.selector).toEqual({});
    expect(complex.warnings.join('\n')).toMatch(/targetCondition .* not carried over/);
  });

  it('rejects an invalid manifest with InvalidInput naming the path', () => {
    const bad = manifest({
      modules: { a: { settings: { image: 'x' }, restartPolicy: 'sometimes' } },
    });
    try {
      importManifest(bad, { name: 'x' });
      throw new Error('expected a failure');
    } catch (err) {
      expect(isKedgeError(err, ErrorCode.InvalidInput)).toBe(true);
      expect((err as Error).message).toMatch(/modules\.a\.restartPolicy/);
    }
    expect(() => importManifest(manifest({}), { name: 'Not_A_Label' })).toThrow(/--name/);
  });

  it('parses --selector and rejects bad pairs', () => {
    expect(parseSelector('site=lyon, kedge.io/tier=edge')).toEqual({
      site: 'lyon',
      'kedge.io/tier': 'edge',
    });
    expect(() => parseSelector('site')).toThrow(/--selector "site"/);
    expect(() => parseSelector('bad key=x')).toThrow(/--selector/);
    expect(() => parseSelector('k=-x')).toThrow(/--selector/);
  });

  it('writes YAML that reads back as the same objects', () => {
    const { objects } = importManifest(fixture('multi-module.json'), { name: 'plant' });
    const docs = parseAllDocuments(toYaml(objects)).map((d) => d.toJS() as unknown);
    expect(docs).toEqual(objects);
  });
});

describe('import name conversion', () => {
  it('makes DNS labels from IoT Edge names', () => {
    expect(toDnsLabel('SimulatedTemperatureSensor', 'm')).toBe('simulated-temperature-sensor');
    expect(toDnsLabel('anomaly_detector', 'm')).toBe('anomaly-detector');
    expect(toDnsLabel('__', 'm')).toBe('m');
    expect(toDnsLabel('a'.repeat(80), 'm')).toHaveLength(63);
  });

  it('keeps labels unique, suffixing clashes', () => {
    const map = uniqueLabels(['a-b', 'A_B', 'aB'], 'm');
    expect(map.get('a-b')).toBe('a-b');
    expect(map.get('A_B')).toBe('a-b-2');
    expect(map.get('aB')).toBe('a-b-3');
  });

  it('always yields unique DNS labels (property)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.stringMatching(/^[A-Za-z0-9_-]{1,80}$/)), (names) => {
        const map = uniqueLabels(names, 'm');
        const labels = [...map.values()];
        expect(labels.every(isDnsLabel)).toBe(true);
        expect(new Set(labels).size).toBe(names.length);
      }),
    );
  });
});
