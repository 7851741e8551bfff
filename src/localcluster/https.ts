import { request } from 'node:https';

/** TLS material for a request to a local component. */
export interface TlsClient {
  ca?: string;
  cert?: string;
  key?: string;
  /** Skip server verification (components that serve self-signed certs). */
  insecure?: boolean;
}

/** GETs `url` and returns the status code and body; network errors reject. */
export async function httpsGet(
  url: string,
  tls: TlsClient,
  timeoutMs = 5000,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'GET',
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        rejectUnauthorized: !tls.insecure,
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}
