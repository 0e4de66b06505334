/**
 * CloudEvents content modes (integrations/cloudevents-binding.ts), without a network: messages
 * made by the official SDK (`cloudevents`) in structured and binary mode, on Kafka and HTTP,
 * and batched on HTTP, all decode to the same envelope, which the validator accepts; what a
 * binding requires and is missing, or an unknown specversion, is refused with the reason the
 * dead-letter topic will carry. Core's own events encode in both modes and decode back.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { CloudEvent as SdkEvent, HTTP, Kafka, type KafkaMessage } from 'cloudevents';
import {
  decodeHttpEvents,
  decodeKafkaEvent,
  encodeKafkaEvent,
  type KafkaHeaders,
} from '../integrations/cloudevents-binding.js';
import { createEventValidator, InvalidEvent } from '../integrations/event-validator.js';
import { insurerAnswer } from './support/cloudevents.js';
import { cloudEvent } from '../integrations/events.js';

const validator = createEventValidator();
const constatId = randomUUID();

const answer = (id = randomUUID()) =>
  insurerAnswer(constatId, {
    id,
    time: '2025-03-15T09:12:00.000Z',
    note: 'Dossier ouvert — agence Hussein Dey',
  });

/** What a Kafka consumer gets: headers and value as Buffers, as kafkajs hands them. */
function asReceived(message: { headers: Record<string, unknown>; value: unknown }) {
  const headers: KafkaHeaders = {};
  for (const [name, v] of Object.entries(message.headers))
    if (v !== undefined) headers[name] = Buffer.from(String(v));
  const value = typeof message.value === 'string' ? message.value : JSON.stringify(message.value);
  return { headers, value: Buffer.from(value) };
}

const core = (e: SdkEvent<unknown>) => {
  const { id, source, type, subject, time, data } = e;
  return { id, source, type, subject, time, data };
};

function refused(fn: () => unknown, reason: string, detail: RegExp) {
  try {
    fn();
  } catch (err) {
    assert.instance(err, InvalidEvent);
    assert.is((err as InvalidEvent).reason, reason);
    assert.match((err as Error).message, detail);
    return;
  }
  assert.unreachable(`expected ${reason}`);
}

test('Kafka: structured and binary messages of the SDK decode to the same valid envelope', () => {
  const event = answer();
  const modes = {
    structured: asReceived(Kafka.structured(event)),
    binary: asReceived(Kafka.binary(event)),
  };
  assert.ok(modes.binary.headers.ce_specversion, 'the SDK writes ce_ headers in binary mode');
  const decoded = Object.values(modes).map(({ headers, value }) =>
    validator.validate(decodeKafkaEvent(headers, value)),
  );
  for (const e of decoded) {
    assert.equal(core(e as unknown as SdkEvent<unknown>), core(event));
    assert.is(e.specversion, '1.0');
    assert.is(e.datacontenttype, 'application/json');
  }
});

test('Kafka: an envelope as the value without content-type (mirror ce_ headers) is structured', () => {
  const event = answer();
  const value = Buffer.from(JSON.stringify(event));
  const headers = { ce_type: Buffer.from(event.type), ce_id: Buffer.from(event.id) };
  assert.equal(core(validator.validate(decodeKafkaEvent(headers, value)) as never), core(event));
  assert.equal(core(validator.validate(decodeKafkaEvent(undefined, value)) as never), core(event));
});

test('Kafka binary: a missing required ce_ header, an unknown specversion, bad data', () => {
  const { headers, value } = asReceived(Kafka.binary(answer()));
  for (const name of ['ce_id', 'ce_source', 'ce_type']) {
    const without = { ...headers };
    delete without[name];
    refused(() => decodeKafkaEvent(without, value), 'invalid-envelope', new RegExp(name));
  }
  const noVersion = { ...headers };
  delete noVersion.ce_specversion;
  refused(() => decodeKafkaEvent(noVersion, value), 'invalid-envelope', /ce_specversion/);
  for (const version of ['0.3', '2.0', '']) {
    refused(
      () => decodeKafkaEvent({ ...headers, ce_specversion: Buffer.from(version) }, value),
      'unsupported-specversion',
      /ce_specversion/,
    );
  }
  refused(() => decodeKafkaEvent(headers, Buffer.from('{not json')), 'invalid-json', /data/);
  // The schema still applies: a binary event without subject is refused like a structured one.
  const noSubject = { ...headers };
  delete noSubject.ce_subject;
  refused(
    () => validator.validate(decodeKafkaEvent(noSubject, value)),
    'schema-violation',
    /subject/,
  );
});

test('Kafka structured: an unknown specversion and a batch are refused with their reason', () => {
  const event = { ...JSON.parse(JSON.stringify(answer())), specversion: '0.3' };
  const ct = { 'content-type': Buffer.from('application/cloudevents+json') };
  refused(
    () => decodeKafkaEvent(ct, Buffer.from(JSON.stringify(event))),
    'unsupported-specversion',
    /0\.3/,
  );
  refused(
    () =>
      decodeKafkaEvent(
        { 'content-type': Buffer.from('application/cloudevents-batch+json') },
        Buffer.from('[]'),
      ),
    'invalid-envelope',
    /HTTP only/,
  );
});

test('HTTP: structured, binary (percent-encoded ce- headers) and batched requests', () => {
  const event = answer();
  const structured = HTTP.structured(event);
  const binary = HTTP.binary(event);
  assert.ok(binary.headers['ce-id'], 'the SDK writes ce- headers in binary mode');
  const fromStructured = decodeHttpEvents(
    structured.headers as Record<string, string>,
    String(structured.body),
  );
  const fromBinary = decodeHttpEvents(
    new Headers(binary.headers as Record<string, string>),
    typeof binary.body === 'string' ? binary.body : JSON.stringify(binary.body),
  );
  for (const decoded of [fromStructured, fromBinary]) {
    assert.is(decoded.length, 1);
    assert.equal(core(validator.validate(decoded[0]) as never), core(event));
  }
  // A percent-encoded attribute value (the HTTP binding's rule for non-ASCII).
  const encoded = decodeHttpEvents(
    {
      'ce-specversion': '1.0',
      'ce-id': 'é-1',
      'ce-source': encodeURIComponent('saa/agence-é'),
      'ce-type': 'dz.claim.opened.v1',
      'content-type': 'application/json; charset=utf-8',
    },
    '{"claimNumber":"X"}',
  )[0] as Record<string, unknown>;
  assert.is(encoded.source, 'saa/agence-é');
  assert.is(encoded.datacontenttype, 'application/json');
  const batch = [answer(), answer()];
  const decoded = decodeHttpEvents(
    { 'content-type': 'application/cloudevents-batch+json' },
    JSON.stringify(batch),
  );
  assert.equal(
    decoded.map((e) => core(validator.validate(e) as never)),
    batch.map(core),
  );
});

test('HTTP: what is not a CloudEvent, a bad batch, a missing ce- header', () => {
  refused(
    () => decodeHttpEvents({ 'content-type': 'application/json' }, '{}'),
    'invalid-envelope',
    /ce-specversion/,
  );
  refused(
    () => decodeHttpEvents({ 'content-type': 'application/cloudevents-batch+json' }, '{}'),
    'invalid-envelope',
    /array/,
  );
  refused(
    () => decodeHttpEvents({ 'content-type': 'application/cloudevents-batch+json' }, '[{'),
    'invalid-json',
    /batch/,
  );
  refused(
    () =>
      decodeHttpEvents(
        { 'content-type': 'application/cloudevents-batch+json' },
        JSON.stringify([{ specversion: '0.3' }]),
      ),
    'unsupported-specversion',
    /event 0/,
  );
  refused(
    () => decodeHttpEvents({ 'ce-specversion': '1.0', 'ce-id': '1', 'ce-type': 't' }, '{}'),
    'invalid-envelope',
    /ce-source/,
  );
});

test("core's events encode in both modes and decode to themselves (and the SDK reads both)", () => {
  const event = cloudEvent(
    'dz.claim.opened.v1',
    constatId,
    { claimNumber: 'N-1' },
    { source: 'saa' },
  );
  for (const mode of ['structured', 'binary'] as const) {
    const { value, headers } = encodeKafkaEvent(event, mode);
    const received = asReceived({ headers, value });
    assert.equal(decodeKafkaEvent(received.headers, received.value), event, mode);
    const message: KafkaMessage<unknown> = {
      headers,
      key: constatId,
      value: mode === 'binary' ? JSON.parse(value) : value,
      body: value,
    };
    const sdk = Kafka.toEvent(message) as SdkEvent<unknown>;
    assert.equal(
      core(sdk),
      core(event as unknown as SdkEvent<unknown>),
      `${mode}: the SDK reads it`,
    );
  }
  assert.is(encodeKafkaEvent(event, 'binary').headers['content-type'], 'application/json');
  assert.is(
    encodeKafkaEvent(event, 'structured').headers['content-type'],
    'application/cloudevents+json',
  );
});

test.run();
