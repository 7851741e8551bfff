import { KubeConfig } from '@kubernetes/client-node';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KubeClient } from '../controller/kube/client.js';
import { startDashboard, type Dashboard } from './server.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A raw request, so the test sets the Host header and cookies itself. */
function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the dashboard server only serves the page that opened its printed URL', () => {
  let dashboard: Dashboard;
  let origin: string;
  let token: string;

  beforeAll(async () => {
    const uiDir = await mkdtemp(path.join(tmpdir(), 'kedge-dashboard-ui-'));
    await writeFile(path.join(uiDir, 'index.html'), '<title>kedge dashboard</title>');
    const kc = new KubeConfig();
    // Nothing is read from the cluster in these tests: views start only when a page asks.
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://127.0.0.1:9' }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    dashboard = await startDashboard({ client: new KubeClient(kc), port: 0, uiDir });
    const url = new URL(dashboard.url);
    origin = url.origin;
    token = url.searchParams.get('token')!;
  });

  afterAll(async () => dashboard.close());

  it('listens on 127.0.0.1 with a token in the URL', () => {
    expect(dashboard.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{32}$/);
  });

  it('trades the token for a same-site cookie, then serves the page', async () => {
    const opened = await get(`${origin}/?token=${token}`);
    expect(opened.status).toBe(303);
    const cookie = String(opened.headers['set-cookie']).split(';')[0]!;
    expect(opened.headers['set-cookie']?.[0]).toMatch(/HttpOnly; SameSite=Strict/);
    const page = await get(`${origin}/`, { cookie });
    expect(page.status).toBe(200);
    expect(page.body).toContain('kedge dashboard');
  });

  it('refuses a request without the cookie, a wrong token, a foreign Host and any write', async () => {
    expect((await get(`${origin}/api/fleet`)).status).toBe(401);
    expect((await get(`${origin}/?token=${token.replace(/./, 'x')}x`)).status).toBe(401);
    const cookie = `kedge_dashboard=${token}`;
    expect((await get(`${origin}/`, { cookie, host: 'evil.example:80' })).status).toBe(421);
    expect((await get(`${origin}/api/fleet`, { cookie }, 'POST')).status).toBe(405);
  });
});
