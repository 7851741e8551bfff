// The per-namespace telemetry consumer that docs/security.md tells operators to configure, run
// verbatim against a real nats-server: it reads its own namespace's telemetry and nothing else.
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Buckets, Streams, Subjects } from '../../src/common/cloudplane/layout.js';
import { provisionCloudPlane } from '../../src/common/cloudplane/nats.js';
import { PACKAGE_ROOT } from '../../src/localcluster/kubectl.js';
import { ensureNatsServer } from '../../src/localcluster/nats.js';
import { freePort } from '../../src/localcluster/ports.js';

const APP_PASSWORD = 'factory-a-test-password';
const ADMIN = { user: 'kedge', pass: 'kedge-test-password' };

/** The authorization block docs/security.md gives for namespace factory-a. */
function documentedUser(): string {
  const doc = readFileSync(path.join(PACKAGE_ROOT, 'docs/security.md'), 'utf8');
  const block = /```\n# nats-server authorization[^\n]*\n([\s\S]*?)```/u.exec(doc);
  if (!block) throw new Error('docs/security.md has no nats-server authorization example');
  return block[1]!;
}

async function connectAs(port: number, user: string, pass: string): Promise<NatsConnection> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await connect({ servers: `127.0.0.1:${port}`, user, pass });
    } catch (err) {
      if (Date.now() > deadline || String(err).includes('Authorization')) throw err;
      await sleep(100);
    }
  }
}

/** Resolves with the error a call ends in, or undefined if it succeeded. */
async function failure(call: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await call();
    return undefined;
  } catch (err) {
    return String(err);
  }
}

describe('the documented per-namespace telemetry consumer', () => {
  let server: ChildProcess;
  let admin: NatsConnection;
  let app: NatsConnection;
  let port: number;

  beforeAll(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kedge-nats-perm-'));
    port = await freePort();
    const config = path.join(dir, 'nats.conf');
    writeFileSync(
      config,
      [
        `listen: 127.0.0.1:${port}`,
        `jetstream { store_dir: "${path.join(dir, 'js')}" }`,
        'authorization { users: [',
        `  { user: ${ADMIN.user}, password: ${ADMIN.pass} }`,
        documentedUser(),
        '] }',
      ].join('\n'),
    );
    server = spawn(await ensureNatsServer(), ['-c', config], {
      env: { ...process.env, FACTORY_A_PASSWORD: APP_PASSWORD },
      stdio: ['ignore', 'ignore', openSync(path.join(dir, 'nats-server.log'), 'a')],
    });
    admin = await connectAs(port, ADMIN.user, ADMIN.pass);
    await provisionCloudPlane(admin, { replicas: 1 });
    const js = jetstream(admin);
    for (const [ns, device] of [
      ['factory-a', 'press-1'],
      ['factory-b', 'press-2'],
      ['factory-a', 'press-3'],
    ] as const) {
      await js.publish(Subjects.telemetry(ns, device), JSON.stringify({ ns, device }));
    }
    app = await connectAs(port, 'factory-a', APP_PASSWORD);
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await admin?.close();
    server?.kill('SIGKILL');
  });

  it("creates its durable consumer and reads only its namespace's telemetry", async () => {
    const jsm = await jetstreamManager(app, { checkAPI: false });
    await jsm.consumers.add(Streams.telemetry, {
      durable_name: 'app-factory-a',
      filter_subject: Subjects.telemetryOf('factory-a'),
      ack_policy: AckPolicy.Explicit,
    });
    const consumer = await jetstream(app).consumers.get(Streams.telemetry, 'app-factory-a');
    const got: string[] = [];
    const batch = await consumer.fetch({ max_messages: 10, expires: 2_000 });
    for await (const m of batch) {
      got.push(m.subject);
      m.ack();
    }
    expect(got).toEqual([
      Subjects.telemetry('factory-a', 'press-1'),
      Subjects.telemetry('factory-a', 'press-3'),
    ]);
  });

  it("is refused another namespace's telemetry, the buckets and plain subscriptions", async () => {
    const jsm = await jetstreamManager(app, { checkAPI: false, timeout: 2_000 });
    const refusals = {
      otherNamespace: await failure(() =>
        jsm.consumers.add(Streams.telemetry, {
          durable_name: 'app-factory-a',
          filter_subject: Subjects.telemetryOf('factory-b'),
          ack_policy: AckPolicy.Explicit,
        }),
      ),
      otherConsumerName: await failure(() =>
        jsm.consumers.add(Streams.telemetry, {
          durable_name: 'app-factory-b',
          filter_subject: Subjects.telemetryOf('factory-b'),
          ack_policy: AckPolicy.Explicit,
        }),
      ),
      credentialsBucket: await failure(() => jsm.streams.info(`KV_${Buckets.credentials}`)),
      coreSubscribe: await failure(async () => {
        const sub = app.subscribe(Subjects.telemetryAll);
        const ended = await Promise.race([sub.closed, sleep(3_000).then(() => 'open' as const)]);
        if (ended === 'open') sub.unsubscribe();
        else throw ended ?? new Error('subscription closed');
      }),
    };
    for (const [what, err] of Object.entries(refusals)) {
      expect({ what, err }).toEqual({
        what,
        err: expect.stringContaining('Permissions Violation'),
      });
    }
  });
});
