import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ErrorCode, isKedgeError, type KedgeError } from '../../common/errors.js';
import { resolveLayers, withLayeredProperties } from '../../controller/layering.js';
import type { EdgeDeployment } from '../types.generated.js';
import { validateObject } from '../validate.js';
import {
  importDocument,
  importManifest,
  isLayered,
  parsePriority,
  parseSetPairs,
  type DocumentImportOptions,
} from './index.js';

const FIXTURES = path.resolve('test/fixtures/iotedge');
const fixture = (name: string): unknown =>
  JSON.parse(readFileSync(path.join(FIXTURES, name), 'utf8')) as unknown;

/** The module name the importer gives an IoT Edge module, whatever its naming rule is. */
function importedName(name: string): string {
  const doc = {
    $edgeAgent: {
      'properties.desired': {
        schemaVersion: '1.1',
        runtime: { type: 'docker' },
        modules: { [name]: { settings: { image: 'x:1' } } },
      },
    },
  };
  return importManifest(doc).objects[0]!.spec.modules![0]!.name;
}

function thrown(fn: () => unknown): KedgeError {
  try {
    fn();
  } catch (err) {
    if (isKedgeError(err)) return err;
    throw err;
  }
  throw new Error('did not throw');
}

/** Every value the template fixture's placeholders need. */
const TEMPLATE_VALUES = new Map([
  ['CONTAINER_REGISTRY_USERNAME_contosoregistry', 'contosoregistry'],
  ['CONTAINER_REGISTRY_PASSWORD_contosoregistry', 'not-a-real-password-tmpl'],
  ['MODULES.PlcReader', 'contosoregistry.azurecr.io/plc-reader:0.3.1-amd64'],
  ['PLC_ENDPOINT', 'opc.tcp://plc-7:4840'],
  ['AGGREGATOR_TAG', '1.4.0'],
  ['WINDOW_SECS', '60'],
  ['LINE_NAME', 'line-7'],
]);

describe('layered deployment import', () => {
  const doc = fixture('layered-monitoring.json');
  const sensor = importedName('SimulatedTemperatureSensor');
  const collector = importedName('MetricsCollector');

  it('recognises path keys under the content wrapper', () => {
    expect(isLayered(doc)).toBe(true);
    expect(isLayered(fixture('simulated-temperature-sensor.json'))).toBe(false);
    expect(isLayered({ content: fixture('simulated-temperature-sensor.json') })).toBe(false);
  });

  it('imports modules, routes and twin paths into one valid EdgeDeployment with a priority', () => {
    const { objects, warnings } = importDocument(doc, {
      priority: 10,
      selector: { site: 'lyon' },
      namespace: 'plant',
    });
    const d = objects[0]!;
    expect(validateObject(d)).toEqual([]);
    expect(d.metadata.name).toBe('imported');
    expect(d.spec.priority).toBe(10);
    expect(d.spec.modules!.map((m) => [m.name, m.image])).toEqual([
      [collector, 'contosoregistry.azurecr.io/metrics-collector:2.1'],
    ]);
    expect(d.spec.modules![0]!.env).toEqual([{ name: 'ScrapeIntervalSecs', value: '30' }]);
    const routes = Object.fromEntries(d.spec.routes!.map((r) => [r.name, r]));
    expect(Object.values(routes).map((r) => r.route)).toEqual([
      // Routes keep the IoT Hub module ids; the modules keep them as moduleId.
      'FROM /messages/modules/MetricsCollector/outputs/metrics INTO $upstream',
      'FROM /messages/modules/SimulatedTemperatureSensor/outputs/* WHERE $body.machine.temperature > 80 INTO BrokeredEndpoint("/modules/MetricsCollector/inputs/alerts")',
    ]);
    expect(Object.values(routes)[0]).toMatchObject({ priority: 2, timeToLiveSecs: 86400 });
    expect(d.spec.desiredProperties).toEqual([
      {
        module: collector,
        path: 'collection',
        value: { targets: ['SimulatedTemperatureSensor', 'filtermodule'], format: 'prometheus' },
      },
      { module: sensor, path: 'layeredProperties.SendInterval', value: 5 },
      { module: sensor, path: 'layeredProperties.Site', value: 'lyon' },
    ]);
    expect(d.spec.imagePullSecrets).toEqual([{ name: 'imported-registry' }]);
    expect(JSON.stringify(d)).not.toContain('not-a-real-password');
    expect(warnings.join('\n')).toMatch(/module "SimulatedTemperatureSensor".*not defined here/);
    expect(warnings.join('\n')).not.toMatch(/without a priority/);
  });

  it('takes the at-scale priority, and warns when there is none', () => {
    const atScale = { id: 'monitoring', priority: 20, ...(doc as object) };
    expect(importDocument(atScale).objects[0]!.spec.priority).toBe(20);
    expect(importDocument(doc).warnings.join('\n')).toMatch(
      /layered deployment without a priority.*pass --priority/,
    );
  });

  it('layers over the base deployment as IoT Edge does: twin paths merge, priority wins', () => {
    const base = importDocument(fixture('simulated-temperature-sensor.json'), { name: 'base' })
      .objects[0]!;
    base.metadata.uid = 'uid-base';
    base.spec.modules!.find((m) => m.name === sensor)!.desiredProperties = {
      SendData: true,
      layeredProperties: { Site: 'unknown', Unit: 'C' },
    };
    const layer = importDocument(doc, { name: 'monitoring', priority: 10 }).objects[0]!;
    layer.metadata.uid = 'uid-layer';
    const on = [base, layer] as EdgeDeployment[];
    const { winners, lost } = resolveLayers(on);
    expect(lost).toEqual([]);
    expect(withLayeredProperties(winners.get(sensor)!, on).desiredProperties).toEqual({
      SendData: true,
      layeredProperties: { Site: 'lyon', Unit: 'C', SendInterval: 5 },
    });
    expect(winners.get(collector)!.deployment.metadata.name).toBe('monitoring');
  });

  it('names the path keys it cannot carry over', () => {
    const odd = {
      content: {
        modulesContent: {
          $edgeAgent: {
            'properties.desired.modules.A.settings.image': 'x:2',
            'properties.desired.systemModules.edgeHub': {},
          },
          $edgeHub: { 'properties.desired.storeAndForwardConfiguration.timeToLiveSecs': 10 },
          A: { 'properties.desired.$version': 3, 'properties.desired.ok': 1 },
        },
      },
    };
    const { objects, warnings } = importDocument(odd, { priority: 1 });
    expect(objects[0]!.spec.desiredProperties).toEqual([
      { module: importedName('A'), path: 'ok', value: 1 },
    ]);
    expect(validateObject(objects[0])).toEqual([]);
    const text = warnings.join('\n');
    for (const key of [
      'properties.desired.modules.A.settings.image',
      'properties.desired.systemModules.edgeHub',
      'properties.desired.storeAndForwardConfiguration.timeToLiveSecs',
      'properties.desired.$version',
    ])
      expect(text).toContain(`["${key}"] not carried over`);
  });

  it('still rejects a layered module that is not a valid module, naming its path', () => {
    const bad = {
      modulesContent: { $edgeAgent: { 'properties.desired.modules.A': { settings: {} } } },
    };
    expect(thrown(() => importDocument(bad)).message).toMatch(
      /modules\.A\.settings\.image: required/,
    );
  });
});

describe('deployment.template.json import', () => {
  const doc = fixture('deployment.template.json');

  it('fills ${NAME} and $NAME from --set and the environment, leaving IoT Edge $ names alone', () => {
    const { objects } = importDocument(doc, {
      set: TEMPLATE_VALUES,
      env: { CONTAINER_REGISTRY_ADDRESS: 'contosoregistry.azurecr.io', LINE_NAME: 'from-env' },
    });
    const d = objects[0]!;
    expect(validateObject(d)).toEqual([]);
    const [plc, aggregator] = d.spec.modules!;
    expect(plc!.image).toBe('contosoregistry.azurecr.io/plc-reader:0.3.1-amd64');
    expect(plc!.createOptions).toEqual({ Env: ['PLC_ENDPOINT=opc.tcp://plc-7:4840'] });
    expect(aggregator!.image).toBe('contosoregistry.azurecr.io/aggregator:1.4.0');
    expect(aggregator!.env).toEqual([{ name: 'WindowSecs', value: '60' }]);
    // --set wins over the environment.
    expect(aggregator!.desiredProperties).toEqual({ Line: 'line-7', Threshold: 12.5 });
    expect(d.spec.routes!.map((r) => r.route)).toEqual([
      `FROM /messages/modules/PlcReader/outputs/* WHERE $connectionModuleId = 'PlcReader' INTO BrokeredEndpoint("/modules/Aggregator/inputs/raw")`,
      'FROM /messages/modules/Aggregator/outputs/* INTO $upstream',
    ]);
    expect(JSON.stringify(d)).not.toContain('not-a-real-password');
  });

  it('names every unresolved placeholder with its JSON path in one error', () => {
    const set = new Map(TEMPLATE_VALUES);
    set.delete('AGGREGATOR_TAG');
    set.delete('MODULES.PlcReader');
    const err = thrown(() => importDocument(doc, { set, env: {} }));
    expect(err.code).toBe(ErrorCode.InvalidInput);
    expect(err.message).toBe(
      'unresolved placeholders CONTAINER_REGISTRY_ADDRESS (at modulesContent.$edgeAgent["properties.desired"].runtime.settings.registryCredentials.contosoregistry.address), ' +
        'MODULES.PlcReader (at modulesContent.$edgeAgent["properties.desired"].modules.PlcReader.settings.image), ' +
        'CONTAINER_REGISTRY_ADDRESS (at modulesContent.$edgeAgent["properties.desired"].modules.Aggregator.settings.image), ' +
        'AGGREGATOR_TAG (at modulesContent.$edgeAgent["properties.desired"].modules.Aggregator.settings.image): ' +
        'pass --set CONTAINER_REGISTRY_ADDRESS=… --set MODULES.PlcReader=… --set AGGREGATOR_TAG=… or set them in the environment; nothing was written',
    );
  });

  it('fills placeholders in keys (braced only) and in layered manifests', () => {
    const layered = {
      content: {
        modulesContent: {
          $edgeAgent: {
            'properties.desired.modules.${MODULE}': { settings: { image: '$IMAGE' } },
          },
          $edgeHub: {
            'properties.desired.routes.r': 'FROM /messages/modules/${MODULE}/* INTO $upstream',
          },
        },
      },
    };
    const set = new Map([
      ['MODULE', 'probe'],
      ['IMAGE', 'probe:2'],
    ]);
    const d = importDocument(layered, { set, priority: 3 }).objects[0]!;
    expect(d.spec.modules).toMatchObject([{ name: 'probe', image: 'probe:2' }]);
    expect(d.spec.routes![0]!.route).toBe('FROM /messages/modules/probe/* INTO $upstream');
  });

  it('fills only templates: *.template.json, $schema-template, or when --set is given', () => {
    const plain = {
      $edgeAgent: {
        'properties.desired': {
          schemaVersion: '1.1',
          runtime: { type: 'docker' },
          modules: {
            m: { settings: { image: 'm:1', createOptions: { Cmd: ['sh', '-c', 'serve $PORT'] } } },
          },
        },
      },
    };
    const cmd = (o: DocumentImportOptions): unknown =>
      importDocument(plain, { env: { PORT: '1' }, ...o }).objects[0]!.spec.modules![0]!
        .createOptions;
    expect(cmd({})).toEqual({ Cmd: ['sh', '-c', 'serve $PORT'] });
    expect(cmd({ sourceName: 'deployment.debug.template' })).toEqual({
      Cmd: ['sh', '-c', 'serve 1'],
    });
    expect(cmd({ set: new Map([['PORT', '2']]) })).toEqual({ Cmd: ['sh', '-c', 'serve 2'] });
    expect(() =>
      importDocument({ '$schema-template': '4.0.0', modulesContent: plain }, { env: {} }),
    ).toThrow(/unresolved placeholder PORT/);
  });

  it('treats $NAME inside a route as the route language, not a placeholder', () => {
    const doc2 = {
      $edgeAgent: {
        'properties.desired': {
          schemaVersion: '1.1',
          runtime: { type: 'docker' },
          modules: { m: { settings: { image: 'm:1' } } },
        },
      },
      $edgeHub: {
        'properties.desired': {
          schemaVersion: '1.1',
          routes: { r: 'FROM /messages/* WHERE $alert = true AND $body.x > 1 INTO $upstream' },
        },
      },
    };
    const d = importDocument(doc2, {
      sourceName: 'deployment.template',
      env: { alert: 'no', body: 'no', upstream: 'no' },
    }).objects[0]!;
    expect(d.spec.routes![0]!.route).toBe(
      'FROM /messages/* WHERE $alert = true AND $body.x > 1 INTO $upstream',
    );
  });

  it('parses --set and --priority, refusing bad ones by name', () => {
    expect(parseSetPairs(['A=1', 'MODULES.x=a=b'])).toEqual(
      new Map([
        ['A', '1'],
        ['MODULES.x', 'a=b'],
      ]),
    );
    expect(thrown(() => parseSetPairs(['novalue'])).message).toMatch(
      /--set "novalue" is not NAME=VALUE/,
    );
    expect(parsePriority('7')).toBe(7);
    expect(thrown(() => parsePriority('-1')).message).toMatch(/--priority "-1" is not an integer/);
  });
});

describe('runtime settings kedge accepts and does not apply', () => {
  it('imports edgeHub schema 1.2 with mqttBroker, warning that it is ignored', () => {
    const { objects, warnings } = importDocument(fixture('mqtt-broker.json'));
    expect(validateObject(objects[0])).toEqual([]);
    expect(objects[0]!.spec.routes).toHaveLength(1);
    expect(warnings).toContainEqual(
      expect.stringMatching(
        /^\$edgeHub mqttBroker \(authorizations, bridges\) ignored: .*schemaVersion 1\.2/,
      ),
    );
    for (const version of ['1.3', '1.4']) {
      const doc = fixture('mqtt-broker.json') as any;
      doc.modulesContent.$edgeHub['properties.desired'].schemaVersion = version;
      expect(importDocument(doc).objects).toHaveLength(1);
    }
  });

  it('says that system module proxy settings are not applied and where a proxy goes', () => {
    const { objects, warnings } = importDocument(fixture('proxy.json'));
    expect(validateObject(objects[0])).toEqual([]);
    expect(objects[0]!.spec.modules![0]!.env).toEqual([
      { name: 'https_proxy', value: 'http://proxy.plant.example:3128' },
    ]);
    const proxy = warnings.filter((w) => w.includes('proxy setting'));
    expect(proxy).toEqual([
      expect.stringMatching(/^systemModules\.edgeAgent env https_proxy not applied: .*dockerd/),
      expect.stringMatching(/^systemModules\.edgeHub env https_proxy, no_proxy not applied: /),
    ]);
  });

  it('imports an ordinary manifest in the content wrapper', () => {
    const wrapped = { content: fixture('simulated-temperature-sensor.json') };
    const plain = importDocument(fixture('simulated-temperature-sensor.json'), { name: 'x' });
    expect(importDocument(wrapped, { name: 'x' }).objects).toEqual(plain.objects);
  });
});
