/**
 * `constat insurer --company saa [--answer]`: a small example insurer. It reads its company's
 * topic, prints each finalized constat, and with --answer replies `dz.claim.opened.v1` with a
 * claim number, as an insurer's claims system would.
 */
import { parseArgs } from 'node:util';
import { createHash } from 'node:crypto';
import { pino } from 'pino';
import { loadKafkaConfig } from '../server/config.js';
import { createKafkaClient } from '../integrations/kafka.js';
import {
  cloudEvent,
  eventHeaders,
  EventType,
  type CloudEvent,
  type ConstatFinalizedData,
} from '../integrations/events.js';

export async function runInsurer(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      company: { type: 'string' },
      answer: { type: 'boolean', default: false },
      'from-beginning': { type: 'boolean', default: false },
    },
  });
  const company = values.company;
  if (!company) throw new Error('insurer needs --company <uid> (e.g. saa)');
  const config = loadKafkaConfig();
  if (!config.kafkaBrokers) throw new Error('set KAFKA_BROKERS to the cluster to read from');
  const logger = pino({ level: 'warn' });
  const kafka = createKafkaClient(
    { brokers: config.kafkaBrokers, ...config.kafka, clientId: `insurer-${company}` },
    logger,
  );
  const consumer = kafka.consumer(`insurer-${company}`);
  await consumer.connect();
  await consumer.subscribe({ topic: company, fromBeginning: values['from-beginning'] });
  process.stderr.write(
    `insurer ${company}: reading topic "${company}"${values.answer ? ', answering claim.opened' : ''} (Ctrl-C to stop)\n`,
  );
  const stop = async () => {
    await kafka.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
  await consumer.run({
    eachMessage: async ({ message }) => {
      let event: CloudEvent<ConstatFinalizedData>;
      try {
        event = JSON.parse(message.value?.toString() ?? '') as CloudEvent<ConstatFinalizedData>;
      } catch {
        process.stdout.write(`skipped a message that is not JSON\n`);
        return;
      }
      if (event.type !== EventType.constatFinalized) return; // our own answers, other events
      const { data } = event;
      const mine = (['A', 'B'] as const).filter((r) => data.parties[r].insurer === company);
      const vehicle = (r: 'A' | 'B') =>
        (data.content as Record<string, { vehicle?: { plate?: string } }>)[`vehicle${r}`]?.vehicle
          ?.plate ?? '?';
      process.stdout.write(
        `constat ${data.constatId}  hash ${data.contentHash.slice(0, 12)}…  our insured: ${mine.map((r) => `${r} (${vehicle(r)})`).join(', ')}  ` +
          `signed by ${data.signatures.map((s) => `${s.role}@${s.deviceId}`).join(', ')}\n`,
      );
      if (values.answer) {
        // Derived from the finalized event's id: a redelivered event (delivery is at least
        // once) yields the same answer, which core stores once.
        const digest = createHash('sha256').update(`${company}:${event.id}`).digest('hex');
        const claimNumber = `${company.toUpperCase()}-${digest.slice(0, 8)}`;
        const answer = cloudEvent(
          'dz.claim.opened.v1',
          data.constatId,
          { claimNumber },
          {
            source: company,
            id: `claim-opened-${digest.slice(0, 32)}`,
          },
        );
        const producer = await kafka.producer();
        await producer.send({
          topic: company,
          messages: [
            { key: data.constatId, value: JSON.stringify(answer), headers: eventHeaders(answer) },
          ],
        });
        process.stdout.write(`  → claim opened: ${claimNumber}\n`);
      }
    },
  });
}
