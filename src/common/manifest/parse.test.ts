import fc from 'fast-check';
import { isKedgeError } from '../errors.js';
import { ManifestError, parseManifest, withDefaultTag } from './index.js';

function manifest(modules: Record<string, unknown>, extra: Record<string, unknown> = {}): unknown {
  return {
    modulesContent: {
      $edgeAgent: {
        'properties.desired': {
          schemaVersion: '1.1',
          runtime: {
            type: 'docker',
            settings: {
              registryCredentials: {
                acr: { address: 'myacr.azurecr.io', username: 'u', password: 'p' },
              },
            },
          },
          systemModules: {
            edgeAgent: {
              type: 'docker',
              settings: { image: 'mcr.microsoft.com/azureiotedge-agent:1.5' },
            },
            edgeHub: {
              type: 'docker',
              status: 'running',
              restartPolicy: 'always',
              settings: { image: 'mcr.microsoft.com/azureiotedge-hub:1.5', createOptions: '{}' },
            },
          },
          modules,
        },
      },
      ...extra,
    },
  };
}

function agentDesired(doc: unknown): Record<string, unknown> {
  type Doc = { modulesContent: { $edgeAgent: { 'properties.desired': Record<string, unknown> } } };
  return (doc as Doc).modulesContent.$edgeAgent['properties.desired'];
}

function problemsOf(doc: unknown): { path: string; message: string }[] {
  try {
    parseManifest(doc);
  } catch (err) {
    if (err instanceof ManifestError) return err.problems;
    throw err;
  }
  throw new Error('manifest was accepted');
}

describe('parseManifest', () => {
  it('starts modules with equal startupOrder in name order, case-insensitive first', () => {
    const image = { settings: { image: 'busybox' } };
    const d = parseManifest(manifest({ b: image, a: image, B: image, 'a-2': image, a2: image }));
    expect(d.modules.map((m) => m.name)).toEqual(['a', 'a-2', 'a2', 'B', 'b']);
  });

  it('normalizes modules, defaults and startup order', () => {
    const d = parseManifest(
      manifest({
        b: { settings: { image: 'busybox' }, startupOrder: 2 },
        a: {
          status: 'stopped',
          restartPolicy: 'never',
          imagePullPolicy: 'never',
          startupOrder: 1,
          settings: { image: 'localhost:5000/x' },
        },
        c: { settings: { image: 'busybox:1.36' } },
      }),
    );
    expect(d.modules.map((m) => m.name)).toEqual(['a', 'b', 'c']);
    expect(d.modules[0]).toMatchObject({
      image: 'localhost:5000/x:latest',
      status: 'stopped',
      restartPolicy: 'never',
      imagePullPolicy: 'never',
    });
    expect(d.modules[1]).toMatchObject({
      image: 'busybox:latest',
      status: 'running',
      restartPolicy: 'on-unhealthy',
      imagePullPolicy: 'on-create',
      createOptions: {},
      env: {},
    });
    expect(d.modules[2]!.startupOrder).toBe(4294967295);
    expect(d.registryCredentials).toEqual([
      { address: 'myacr.azurecr.io', username: 'u', password: 'p' },
    ]);
    expect(d.systemModules.edgeHub?.restartPolicy).toBe('always');
  });

  it('reads a moduleId as the hub identity, defaulting to the key, and refuses a shared one', () => {
    const image = { settings: { image: 'img:1' } };
    const parsed = parseManifest(
      manifest({ 'sensor-a': { ...image, moduleId: 'SensorA' }, SensorB: image }),
    );
    expect(parsed.modules.map((m) => [m.name, m.moduleId])).toEqual([
      ['sensor-a', 'SensorA'],
      ['SensorB', 'SensorB'],
    ]);
    expect(
      problemsOf(manifest({ a: { ...image, moduleId: 'X' }, b: { ...image, moduleId: 'X' } })),
    ).toEqual([
      {
        path: 'modulesContent.$edgeAgent["properties.desired"].modules.b.moduleId',
        message: 'module id "X" is already the id of module "a"',
      },
    ]);
    expect(problemsOf(manifest({ a: { ...image, moduleId: 'bad:id' } }))[0]!.path).toMatch(
      /modules\.a\.moduleId$/,
    );
  });

  it('accepts the inner form and the full form alike', () => {
    const full = manifest({ m: { settings: { image: 'x:1' } } }) as { modulesContent: unknown };
    expect(parseManifest(full.modulesContent)).toEqual(parseManifest(full));
  });

  it('reads createOptions as an object, a string and in chunks, in chunk order', () => {
    const options = { HostConfig: { Binds: ['/a:/b'] }, Labels: { x: 'y'.repeat(40) } };
    const text = JSON.stringify(options);
    const third = Math.ceil(text.length / 3);
    const d = parseManifest(
      manifest({
        obj: { settings: { image: 'x:1', createOptions: options } },
        str: { settings: { image: 'x:1', createOptions: text } },
        chunked: {
          settings: {
            image: 'x:1',
            createOptions02: text.slice(2 * third),
            createOptions: text.slice(0, third),
            createOptions01: text.slice(third, 2 * third),
          },
        },
      }),
    );
    for (const m of d.modules) expect(m.createOptions).toEqual(options);
  });

  it('turns env {value} entries into strings', () => {
    const d = parseManifest(
      manifest({
        m: {
          settings: { image: 'x:1' },
          env: { A: { value: 'a' }, N: { value: 25 }, B: { value: false } },
        },
      }),
    );
    expect(d.modules[0]!.env).toEqual({ A: 'a', N: '25', B: 'false' });
  });

  it('normalizes $edgeHub routes in both forms and the module twins', () => {
    const d = parseManifest(
      manifest(
        { m: { settings: { image: 'x:1' } } },
        {
          $edgeHub: {
            'properties.desired': {
              schemaVersion: '1.1',
              routes: {
                plain: 'FROM /messages/* INTO $upstream',
                obj: { route: 'FROM /messages/* INTO $upstream', priority: 0, timeToLiveSecs: 60 },
              },
              storeAndForwardConfiguration: { timeToLiveSecs: 100 },
            },
          },
          m: { 'properties.desired': { threshold: 25 } },
        },
      ),
    );
    expect(d.hub.routes.plain).toEqual({
      route: 'FROM /messages/* INTO $upstream',
      priority: 2000000000,
      timeToLiveSecs: 0,
    });
    expect(d.hub.routes.obj).toMatchObject({ priority: 0, timeToLiveSecs: 60 });
    expect(d.hub.storeAndForwardTimeToLiveSecs).toBe(100);
    expect(d.twins).toEqual({ m: { threshold: 25 } });
  });

  it('uses $version when present, else a stable content hash', () => {
    const a = manifest({ m: { settings: { image: 'x:1' } } });
    const b = manifest({ m: { settings: { image: 'x:2' } } });
    expect(parseManifest(a).version).toBe(parseManifest(a).version);
    expect(parseManifest(a).version).not.toBe(parseManifest(b).version);
    const versioned = manifest({});
    agentDesired(versioned).$version = 7;
    expect(parseManifest(versioned).version).toBe('7');
  });

  it('names the JSON path of every problem', () => {
    const problems = problemsOf(
      manifest({
        good: { settings: { image: 'x:1' } },
        bad: { status: 'sleeping', settings: {}, restartPolicy: 'sometimes', extra: 1 },
      }),
    );
    const at = 'modulesContent.$edgeAgent["properties.desired"].modules.bad';
    expect(problems).toEqual(
      expect.arrayContaining([
        { path: `${at}.status`, message: 'must be one of running, stopped' },
        { path: `${at}.settings.image`, message: 'required' },
        { path: `${at}.restartPolicy`, message: expect.stringContaining('on-failure') },
        { path: `${at}.extra`, message: 'unknown field' },
      ]),
    );
  });

  it('reports invalid createOptions JSON with its path', () => {
    const problems = problemsOf(
      manifest({ m: { settings: { image: 'x', createOptions: '{"a":' } } }),
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]!.path).toBe(
      'modulesContent.$edgeAgent["properties.desired"].modules.m.settings.createOptions',
    );
    expect(problems[0]!.message).toMatch(/^invalid JSON/);
  });

  it('rejects bad env names, schema versions and module names', () => {
    const doc = manifest({
      'bad.name': { settings: { image: 'x' } },
      m: { settings: { image: 'x' }, env: { 'A B': { value: 'x' } } },
    });
    agentDesired(doc).schemaVersion = '2.0';
    const paths = problemsOf(doc).map((p) => p.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'modulesContent.$edgeAgent["properties.desired"].schemaVersion',
        'modulesContent.$edgeAgent["properties.desired"].modules',
        'modulesContent.$edgeAgent["properties.desired"].modules.m.env',
      ]),
    );
  });

  it('throws a KedgeError with code InvalidInput and a one-line message', () => {
    let caught: unknown;
    try {
      parseManifest({ modulesContent: {} });
    } catch (err) {
      caught = err;
    }
    expect(isKedgeError(caught, 'KEDGE_ERR_INVALID_INPUT')).toBe(true);
    expect((caught as Error).message).toBe(
      'invalid deployment manifest: modulesContent.$edgeAgent: required',
    );
  });

  it('never throws anything but ManifestError on arbitrary JSON (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        try {
          parseManifest(value);
        } catch (err) {
          return err instanceof ManifestError && err.problems.length > 0;
        }
        return true;
      }),
    );
  });

  it('round-trips any createOptions object through string chunks (property)', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ minLength: 1 }), fc.jsonValue()),
        fc.integer({ min: 1, max: 99 }),
        (options, chunkCount) => {
          const text = JSON.stringify(options);
          const size = Math.max(1, Math.ceil(text.length / chunkCount));
          const settings: Record<string, unknown> = { image: 'x:1' };
          for (let i = 0; i * size < text.length; i += 1) {
            settings[i === 0 ? 'createOptions' : `createOptions${String(i).padStart(2, '0')}`] =
              text.slice(i * size, (i + 1) * size);
          }
          const d = parseManifest(manifest({ m: { settings } }));
          expect(d.modules[0]!.createOptions).toEqual(JSON.parse(text));
        },
      ),
    );
  });
});

describe('withDefaultTag', () => {
  it.each([
    ['busybox', 'busybox:latest'],
    ['busybox:1', 'busybox:1'],
    ['localhost:5000/a/b', 'localhost:5000/a/b:latest'],
    ['localhost:5000/a/b:2', 'localhost:5000/a/b:2'],
    ['a@sha256:abc', 'a@sha256:abc'],
  ])('%s → %s', (input, expected) => {
    expect(withDefaultTag(input)).toBe(expected);
  });
});
