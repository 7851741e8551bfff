// A lean MQTT 3.1.1 load-generator client: mqtt-packet encoding on a bare socket, no stores, no
// promises per message. The broker under test, not the generator, should set the pace and the tail.
import mqttPacket, { type IPublishPacket, type Packet } from 'mqtt-packet';
import net from 'node:net';
import tls from 'node:tls';

export interface RawConnectOptions {
  clientId: string;
  username?: string;
  password?: string;
  /** Clean session; defaults to false (a persistent session). */
  clean?: boolean;
  /** Dial TLS, trusting this CA (PEM), with SNI `localhost`. */
  tlsCaPem?: string;
}

export class RawMqttClient {
  readonly #socket: net.Socket;
  readonly #waiting = new Map<string, (packet: Packet) => void>();
  #nextId = 0;
  #corked = false;
  /** Called with each PUBACK's message id. */
  onPuback: (messageId: number) => void = () => undefined;
  /** Called with each incoming PUBLISH; QoS1 ones are acknowledged before this runs. */
  onPublish: (packet: IPublishPacket) => void = () => undefined;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on('packet', (p: Packet) => this.#dispatch(p));
    socket.on('data', (chunk: Buffer) => parser.parse(chunk));
  }

  static async connect(port: number, options: RawConnectOptions): Promise<RawMqttClient> {
    const socket = options.tlsCaPem
      ? tls.connect({ port, host: '127.0.0.1', ca: options.tlsCaPem, servername: 'localhost' })
      : net.connect({ port, host: '127.0.0.1', noDelay: true });
    if (options.tlsCaPem) socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once(options.tlsCaPem ? 'secureConnect' : 'connect', resolve);
      socket.once('error', reject);
    });
    const client = new RawMqttClient(socket);
    const connack = client.#await('connack');
    socket.write(
      mqttPacket.generate({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clientId: options.clientId,
        clean: options.clean ?? false,
        keepalive: 60,
        username: options.username,
        password: options.password === undefined ? undefined : Buffer.from(options.password),
      }),
    );
    const ack = (await connack) as { returnCode?: number };
    if (ack.returnCode !== 0) throw new Error(`CONNACK return code ${ack.returnCode}`);
    return client;
  }

  async subscribe(topic: string): Promise<void> {
    const suback = this.#await('suback');
    this.#socket.write(
      mqttPacket.generate({
        cmd: 'subscribe',
        messageId: this.#id(),
        subscriptions: [{ topic, qos: 1 }],
      }),
    );
    const granted = ((await suback) as { granted: number[] }).granted;
    if (granted[0] !== 1) throw new Error(`subscription to ${topic} refused (${granted[0]})`);
  }

  /** Sends a QoS1 PUBLISH and returns its message id; the PUBACK arrives via `onPuback`. */
  publish(topic: string, payload: string): number {
    const messageId = this.#id();
    this.#write({
      cmd: 'publish',
      topic,
      payload,
      qos: 1,
      messageId,
      retain: false,
      dup: false,
    });
    return messageId;
  }

  close(): Promise<void> {
    return new Promise((resolve) =>
      this.#socket.end(mqttPacket.generate({ cmd: 'disconnect' }), resolve),
    );
  }

  /** Writes through a cork released on the next tick, so a burst leaves in one syscall. */
  #write(packet: Packet): void {
    if (!this.#corked) {
      this.#corked = true;
      this.#socket.cork();
      process.nextTick(() => {
        this.#corked = false;
        this.#socket.uncork();
      });
    }
    this.#socket.write(mqttPacket.generate(packet));
  }

  #id(): number {
    this.#nextId = (this.#nextId % 65_535) + 1;
    return this.#nextId;
  }

  #await(cmd: string): Promise<Packet> {
    return new Promise((resolve) => this.#waiting.set(cmd, resolve));
  }

  #dispatch(packet: Packet): void {
    if (packet.cmd === 'puback') {
      this.onPuback(packet.messageId!);
      return;
    }
    if (packet.cmd === 'publish') {
      if (packet.qos === 1) {
        this.#write({ cmd: 'puback', messageId: packet.messageId! });
      }
      this.onPublish(packet);
      return;
    }
    const waiter = this.#waiting.get(packet.cmd);
    this.#waiting.delete(packet.cmd);
    waiter?.(packet);
  }
}
