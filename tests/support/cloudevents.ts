/**
 * An insurer's side with the official CloudEvents SDK (`cloudevents`): its answers, and its
 * Kafka messages as kafkajs sends them.
 */
import { randomUUID } from 'node:crypto';
import { CloudEvent, type KafkaMessage } from 'cloudevents';
import type { Message } from 'kafkajs';

/** A `dz.claim.opened.v1` answer from `saa`, as the SDK builds it. */
export function insurerAnswer(
  constatId: string,
  opts: { claimNumber?: string; id?: string; time?: string; note?: string } = {},
): CloudEvent<{ claimNumber: string; note: string }> {
  return new CloudEvent({
    specversion: '1.0',
    id: opts.id ?? randomUUID(),
    source: 'saa',
    type: 'dz.claim.opened.v1',
    subject: constatId,
    ...(opts.time ? { time: opts.time } : {}),
    datacontenttype: 'application/json',
    dataschema: 'urn:constat:schema:dz.claim.opened.v1',
    data: {
      claimNumber: opts.claimNumber ?? 'SAA-2025-000123',
      note: opts.note ?? 'Dossier ouvert',
    },
  });
}

/**
 * The SDK's message as kafkajs sends it: the SDK leaves a binary message's value as the data
 * object, so it is written as JSON, and header values as strings.
 */
export function toKafka(message: KafkaMessage<unknown>, key: string): Message {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.headers))
    if (value !== undefined && value !== null) headers[name] = String(value);
  const value =
    typeof message.value === 'string' ? message.value : JSON.stringify(message.value ?? null);
  return { key, value, headers };
}
