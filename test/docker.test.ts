import { docker } from '../src/localcluster/docker.js';
import { LOCAL_IMAGES } from '../src/localcluster/images.js';

describe('offline test images on a real dockerd', () => {
  it('runs a container from the busybox image built with docker import', async () => {
    const out = await docker([
      'run',
      '--rm',
      LOCAL_IMAGES.busybox,
      'sh',
      '-c',
      'echo hello from $(uname -s)',
    ]);
    expect(out).toBe('hello from Linux');
  });

  it('runs Node.js with the Azure IoT device SDK inside the module image', async () => {
    const script =
      "import('azure-iot-device').then(m => console.log(typeof m.default.ModuleClient.fromEnvironment))";
    const out = await docker(['run', '--rm', LOCAL_IMAGES.node, 'node', '-e', script]);
    expect(out).toBe('function');
  });
});
