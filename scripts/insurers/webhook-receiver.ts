/**
 * A real HTTPS webhook receiver (tests, the local stack, the benchmark): a self-signed
 * certificate for 127.0.0.1 made at start (the server trusts it through WEBHOOK_CA_FILE), every
 * request recorded (unless `keep` is off), and the answer chosen by the caller (`respond`). It can stop and listen again on the same port, to
 * play an endpoint that is down for a while.
 */
import https from 'node:https';
import { writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { generate } from 'selfsigned';

export interface ReceivedHook {
  headers: Record<string, string>;
  body: string;
  /** performance.now() when the body was complete. */
  at: number;
}

/** What to answer: a status, optional headers; or a promise, to hold the request open. */
export type Responder = (
  hook: ReceivedHook,
) =>
  | { status: number; headers?: Record<string, string> }
  | Promise<{ status: number; headers?: Record<string, string> }>;

export interface TestCertificate {
  cert: string;
  key: string;
}

export async function testCertificate(): Promise<TestCertificate> {
  const pems = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
    keyType: 'ec',
    extensions: [
      {
        name: 'subjectAltName',
        altNames: [
          { type: 7, ip: '127.0.0.1' },
          { type: 2, value: 'localhost' },
        ],
      },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

export async function writeCaFile(path: string, cert: TestCertificate): Promise<string> {
  await writeFile(path, cert.cert);
  return path;
}

export class WebhookReceiver {
  readonly received: ReceivedHook[] = [];
  respond: Responder = () => ({ status: 204 });
  /** Whether `received` keeps every request (a long benchmark may turn it off). */
  keep = true;
  /** Called with every request as it arrives. */
  onHook: ((hook: ReceivedHook) => void) | undefined;
  #server: https.Server | undefined;
  #port = 0;

  constructor(private readonly certificate: TestCertificate) {}

  get url(): string {
    return `https://127.0.0.1:${this.#port}/hooks`;
  }

  /** Listens (again, on the same port once it had one). */
  async start(): Promise<void> {
    const server = https.createServer(
      { cert: this.certificate.cert, key: this.certificate.key },
      (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const hook: ReceivedHook = {
            headers: Object.fromEntries(
              Object.entries(req.headers).map(([k, v]) => [
                k,
                Array.isArray(v) ? v.join(',') : (v ?? ''),
              ]),
            ),
            body: Buffer.concat(chunks).toString('utf8'),
            at: performance.now(),
          };
          if (this.keep) this.received.push(hook);
          this.onHook?.(hook);
          Promise.resolve(this.respond(hook)).then(
            ({ status, headers }) => {
              if (!res.destroyed) res.writeHead(status, headers).end();
            },
            () => res.destroy(),
          );
        });
      },
    );
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#port, '127.0.0.1', () => resolve());
    });
    this.#port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  /** Stops listening and drops open connections (the endpoint is down). */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  /** The hooks for one event id. */
  withId(id: string): ReceivedHook[] {
    return this.received.filter((h) => h.headers['webhook-id'] === id);
  }

  /** The parsed bodies whose subject is `constatId`, in arrival order. */
  forConstat(constatId: string): Array<{ id: string; type: string; subject: string }> {
    return this.received
      .map((h) => JSON.parse(h.body) as { id: string; type: string; subject: string })
      .filter((e) => e.subject === constatId);
  }
}
