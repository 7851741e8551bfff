import { freePort } from './ports.js';

describe('freePort', () => {
  it('never hands out the same port twice, even before any caller binds it', async () => {
    const ports: number[] = [];
    for (let i = 0; i < 300; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(ports.length);
  });
});
