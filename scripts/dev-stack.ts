/**
 * `npm run dev:stack` (`constat dev`): the whole integration on one machine, for newcomers and
 * demos. Starts the Kafka test broker, the server pointed at it (embedded PGlite under
 * `.data/dev-stack`, or DATABASE_URL), the AI service, and two example insurers: `saa` on Kafka
 * (`constat insurer --answer`) and `trust` on a local HTTPS webhook receiver that verifies each
 * signature, prints the event and answers `dz.claim.opened.v1` over the REST API. Ctrl-C stops
 * everything it started.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBroker, type Broker } from './kafka/broker.js';
import { freePort } from './free-port.js';
import { testCertificate, WebhookReceiver } from './insurers/webhook-receiver.js';
import { InsurerRestClient, parseCredentials } from './insurers/rest-client.js';
import { activeSecrets, verifySignature } from '../integrations/webhook-signature.js';
import { cloudEvent } from '../integrations/events.js';
import { createKafkaClient } from '../integrations/kafka.js';
import { pino } from 'pino';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'bin/constat.js');
const say = (line: string) => process.stdout.write(`[dev-stack] ${line}\n`);

export async function runDevStack(): Promise<void> {
  const dataDir = path.join(ROOT, '.data/dev-stack');
  mkdirSync(dataDir, { recursive: true });
  const children: ChildProcess[] = [];
  let broker: Broker | undefined;
  const certificate = await testCertificate();
  const receiver = new WebhookReceiver(certificate);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    say('stopping');
    for (const child of children.reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    await receiver.stop();
    await broker?.stop({ removeData: true });
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());

  say('starting the Kafka test broker (first run fetches it from Maven Central)…');
  const running = await startBroker({ log: say });
  broker = running;
  try {
    await startAll(running);
  } catch (err) {
    say(`could not start: ${(err as Error).message}`);
    await stop();
  }

  async function startAll(broker: Broker): Promise<void> {
    await receiver.start();
    const caFile = path.join(dataDir, 'webhook-ca.pem');
    writeFileSync(caFile, certificate.cert);
    const port = Number(process.env.PORT ?? 8080);
    const env = {
      ...process.env,
      KAFKA_BROKERS: broker.brokers,
      DATA_DIR: dataDir,
      PORT: String(port),
      WEBHOOK_CA_FILE: caFile,
      COMPANY_REFRESH_MS: '2000',
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    };
    // Configured before the server starts: the embedded database has one user at a time.
    const operator = (...args: string[]) => {
      const run = spawnSync(process.execPath, [CLI, ...args], { env, encoding: 'utf8' });
      if (run.status !== 0) throw new Error(`constat ${args.join(' ')}: ${run.stderr}`);
      return run.stdout;
    };
    operator('companies', 'set-delivery', 'trust', 'webhook', '--url', receiver.url);
    // A fresh secret each run (the receiver is new too); the previous one expires at once.
    const webhookSecret = /whsec_\S+/.exec(
      operator('companies', 'rotate-secret', 'trust', '--overlap', '1s'),
    )![0];
    const trust = parseCredentials('trust', operator('companies', 'credentials', 'trust'));

    const start = (
      name: string,
      args: string[],
      extra: Record<string, string> = {},
      restarts = 0,
    ): ChildProcess => {
      const child = spawn(process.execPath, [CLI, ...args], {
        env: { ...env, ...extra },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const prefix = (chunk: Buffer) =>
        chunk
          .toString()
          .split('\n')
          .filter(Boolean)
          .forEach((line) => process.stdout.write(`[${name}] ${line}\n`));
      child.stdout!.on('data', prefix);
      child.stderr!.on('data', prefix);
      child.on('exit', (code) => {
        if (stopping) return;
        // A consumer that joins before a fresh broker's group coordinator is up gives up; the
        // example insurer is started again until it stays.
        if (restarts > 0) {
          say(`${name} exited (${code}); starting it again`);
          setTimeout(() => void (stopping || start(name, args, extra, restarts - 1)), 2_000);
        } else say(`${name} exited (${code}); Ctrl-C to stop the rest`);
      });
      children.push(child);
      return child;
    };
    // The example insurers subscribe to their topics at once: make them before anyone starts
    // (the server would create them too, but in the background).
    const admin = createKafkaClient(
      { brokers: [broker.brokers], clientId: 'dev-stack', partitions: 3, replicationFactor: 1 },
      pino({ level: 'silent' }),
    );
    await admin.ensureTopics(['saa', 'trust', 'constats', 'ai-results']);
    await admin.close();
    start('server', ['serve', '--dev']);
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      if (
        await fetch(`${base}/healthz`).then(
          (r) => r.ok,
          () => false,
        )
      )
        break;
      if (i > 600) throw new Error('the server did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    start('ai', ['ai'], {
      DATA_DIR: path.join(dataDir, 'ai'),
      AI_PORT: String(await freePort()),
      LOG_LEVEL: 'warn',
    });
    start('insurer saa (kafka)', ['insurer', '--company', 'saa', '--answer'], {}, 5);

    const rest = new InsurerRestClient(base, trust);
    receiver.keep = false;
    receiver.onHook = (hook) => {
      const verified = verifySignature(
        activeSecrets([{ secret: webhookSecret, expiresAt: null }]),
        (name) => hook.headers[name],
        hook.body,
      );
      const event = JSON.parse(hook.body) as { id: string; type: string; subject: string };
      say(
        `trust (webhook) got ${event.type} for ${event.subject} — signature ${verified.ok ? 'ok' : 'BAD'}`,
      );
      if (!verified.ok || event.type !== 'dz.constat.finalized.v1') return;
      const answer = cloudEvent(
        'dz.claim.opened.v1',
        event.subject,
        { claimNumber: `TR-${event.subject.slice(0, 8)}`, note: 'Dossier ouvert' },
        { source: 'trust' },
      );
      rest.postEvent(answer).then(
        ({ status }) => say(`trust (REST) answered dz.claim.opened.v1: HTTP ${status}`),
        (err: unknown) => say(`trust (REST) answer failed: ${(err as Error).message}`),
      );
    };
    say(`ready: server ${base} (app at ${base}/app/), broker ${broker.brokers}`);
    say('saa takes Kafka, trust takes webhooks; try `npx constat simulate --url ' + base + '`');
    say('Ctrl-C stops everything');
  }
}
