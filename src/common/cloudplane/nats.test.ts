import { natsConnectOptions } from './nats.js';

describe('NATS connection options', () => {
  it('turn off async traces, which cost two stack-captured Errors per request', () => {
    const options = natsConnectOptions({ servers: ['nats://127.0.0.1:4222'] }, 'kedge-gateway');
    expect(options.noAsyncTraces).toBe(true);
  });

  it('keep reconnecting for ever and name the connection', () => {
    const options = natsConnectOptions(
      { servers: ['nats://a:4222', 'nats://b:4222'], user: 'gw', password: 'pw' },
      'kedge-controller',
    );
    expect(options).toMatchObject({
      servers: ['nats://a:4222', 'nats://b:4222'],
      name: 'kedge-controller',
      maxReconnectAttempts: -1,
      waitOnFirstConnect: true,
    });
    expect(options.authenticator).toHaveLength(1);
    expect(options.tls).toBeUndefined();
  });
});
