import { demuxFrames, registryOf } from './docker-util.js';
import { containerCreateBody, mergeEnv } from './docker-create.js';

describe('registryOf', () => {
  it.each([
    ['busybox:1', 'docker.io'],
    ['library/busybox', 'docker.io'],
    ['myacr.azurecr.io/filter:0.1', 'myacr.azurecr.io'],
    ['127.0.0.1:5000/kedge/x:1', '127.0.0.1:5000'],
    ['localhost/x', 'localhost'],
    ['https://MyACR.azurecr.io/x', 'myacr.azurecr.io'],
    ['index.docker.io/library/x', 'docker.io'],
  ])('%s is served by %s', (image, registry) => {
    expect(registryOf(image)).toBe(registry);
  });
});

describe('demuxFrames', () => {
  it('joins stdout and stderr frames in order', () => {
    const frame = (type: number, text: string): Buffer => {
      const header = Buffer.alloc(8);
      header[0] = type;
      header.writeUInt32BE(Buffer.byteLength(text), 4);
      return Buffer.concat([header, Buffer.from(text)]);
    };
    const joined = demuxFrames(
      Buffer.concat([frame(1, 'out\n'), frame(2, 'err\n'), frame(1, 'x')]),
    );
    expect(joined.toString()).toBe('out\nerr\nx');
  });
});

describe('containerCreateBody', () => {
  const ctx = { deviceId: 'd1', network: 'kedge', gatewayHostName: 'gw.local' };
  const spec = {
    name: 'filter',
    moduleId: 'filter',
    image: 'img:1',
    env: { A: 'manifest', IOTEDGE_MODULEID: 'filter' },
    configHash: 'abc',
    restartPolicy: 'always' as const,
    desiredStatus: 'running' as const,
  };

  it('passes createOptions through and adds labels, env, hostname, network and the hub host', () => {
    const createOptions = {
      Env: ['A=options', 'B=options'],
      Labels: { mine: 'yes' },
      HostConfig: {
        Binds: ['/a:/b'],
        ExtraHosts: ['x:1.2.3.4'],
        RestartPolicy: { Name: 'always' },
      },
    };
    const body = containerCreateBody({ ...spec, createOptions }, ctx);
    expect(body).toMatchObject({
      Image: 'img:1',
      Hostname: 'filter',
      Env: ['A=manifest', 'B=options', 'IOTEDGE_MODULEID=filter'],
      Labels: {
        mine: 'yes',
        'io.kedge.module': 'filter',
        'io.kedge.config-hash': 'abc',
        'io.kedge.device': 'd1',
      },
      HostConfig: {
        Binds: ['/a:/b'],
        NetworkMode: 'kedge',
        ExtraHosts: ['x:1.2.3.4', 'gw.local:host-gateway'],
        RestartPolicy: { Name: 'no' },
      },
      NetworkingConfig: { EndpointsConfig: { kedge: { Aliases: ['filter'] } } },
    });
    expect(createOptions.HostConfig.RestartPolicy).toEqual({ Name: 'always' });
  });

  it('names the container by its DNS-label name and aliases its IoT Edge module id too', () => {
    const body = containerCreateBody(
      { ...spec, name: 'filter-module', moduleId: 'FilterModule', createOptions: {} },
      ctx,
    );
    expect(body.Hostname).toBe('filter-module');
    expect(body.NetworkingConfig).toEqual({
      EndpointsConfig: { kedge: { Aliases: ['filter-module', 'FilterModule'] } },
    });
  });

  it('points the hub host at the module network gateway once the hub listens there', () => {
    const body = containerCreateBody(
      { ...spec, createOptions: {} },
      { ...ctx, gatewayAddress: '172.18.0.1' },
    );
    expect((body.HostConfig as Record<string, unknown>).ExtraHosts).toEqual([
      'gw.local:172.18.0.1',
    ]);
  });

  it('leaves host networking alone', () => {
    const body = containerCreateBody(
      { ...spec, createOptions: { HostConfig: { NetworkMode: 'host' } } },
      ctx,
    );
    expect(body.Hostname).toBeUndefined();
    expect(body.NetworkingConfig).toBeUndefined();
    expect((body.HostConfig as Record<string, unknown>).ExtraHosts).toBeUndefined();
  });

  it('merges env lists with later values winning', () => {
    expect(mergeEnv(['A=1', 'B=2', 'FLAG'], { B: '3', C: '4' })).toEqual([
      'A=1',
      'B=3',
      'FLAG',
      'C=4',
    ]);
  });
});
