/**
 * One HTTPS POST of a webhook delivery (node:https, so the trusted CAs and the time limit are
 * ours to set). Never follows a redirect (a 3xx is a failed attempt), reads at most a few KB of
 * the answer, and gives up after `timeoutMs` for the whole exchange, so a slow receiver costs
 * its own delivery slot and nothing else.
 */
import https from 'node:https';
import { rootCertificates } from 'node:tls';

export interface WebhookRequest {
  url: string;
  body: string;
  headers: Record<string, string>;
}

export type SendResult =
  { status: number; retryAfter: string | undefined } | { status: null; error: string };

export type WebhookSend = (request: WebhookRequest) => Promise<SendResult>;

export interface WebhookSenderOptions {
  timeoutMs: number;
  /** Extra trusted CA certificates (PEM), added to Node's bundled roots. */
  extraCa?: string;
  userAgent?: string;
}

const MAX_ANSWER_BYTES = 16 * 1024;

export interface WebhookSender {
  send: WebhookSend;
  close(): void;
}

export function createWebhookSender(opts: WebhookSenderOptions): WebhookSender {
  const agent = new https.Agent({
    keepAlive: true,
    maxSockets: 64,
    ...(opts.extraCa ? { ca: [...rootCertificates, opts.extraCa] } : {}),
  });
  const send: WebhookSend = (request) =>
    new Promise<SendResult>((resolve) => {
      let settled = false;
      const finish = (result: SendResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(result);
      };
      let req: ReturnType<typeof https.request>;
      try {
        const url = new URL(request.url);
        if (url.protocol !== 'https:') throw new Error('webhook URLs must be https');
        req = https.request(url, {
          method: 'POST',
          agent,
          headers: {
            ...request.headers,
            'content-length': String(Buffer.byteLength(request.body)),
            'user-agent': opts.userAgent ?? 'constat-webhooks/1',
          },
        });
      } catch (err) {
        return finish({ status: null, error: (err as Error).message });
      }
      const timer = setTimeout(() => {
        req.destroy(new Error(`no answer within ${opts.timeoutMs} ms`));
      }, opts.timeoutMs);
      req.on('error', (err) => finish({ status: null, error: err.message }));
      req.on('response', (res) => {
        let read = 0;
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          // The answer's body is not used: drain a little, then stop reading.
          if (read > MAX_ANSWER_BYTES) res.destroy();
        });
        const retryAfter = res.headers['retry-after'];
        const done = () => finish({ status: res.statusCode ?? 0, retryAfter });
        res.on('end', done);
        res.on('close', done);
        res.on('error', done);
      });
      req.end(request.body);
    });
  return { send, close: () => agent.destroy() };
}
