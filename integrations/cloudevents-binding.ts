/**
 * CloudEvents 1.0 content modes, on Kafka and HTTP, to and from the one envelope
 * (events.ts). Pure: no network, no validation beyond what the bindings themselves require.
 *
 * - Structured mode: the whole envelope is the message (`content-type:
 *   application/cloudevents+json`).
 * - Binary mode: the attributes travel as headers (`ce_<name>` on Kafka, `ce-<name>` on HTTP,
 *   percent-encoded there), `content-type` is the data's media type (`datacontenttype`), and
 *   the data alone is the message.
 * - Batched mode (HTTP only): `application/cloudevents-batch+json`, a JSON array of envelopes.
 *
 * Whatever the mode, decoding yields the same envelope, which is then validated like any other:
 * authorization, idempotency (the event id) and dead letters cannot tell the modes apart.
 * Kafka: https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/bindings/kafka-protocol-binding.md
 * HTTP: https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/bindings/http-protocol-binding.md
 */
import { InvalidEvent } from './event-validator.js';
import { eventHeaders, type CloudEvent } from './events.js';

export type EventMode = 'structured' | 'binary';
export const EVENT_MODES: readonly EventMode[] = ['structured', 'binary'];

/** A Kafka message's headers as the client library gives them. */
export type KafkaHeaders = Record<
  string,
  string | Buffer | Uint8Array | ReadonlyArray<string | Buffer | Uint8Array> | undefined
>;

const STRUCTURED = 'application/cloudevents+json';
const BATCH = 'application/cloudevents-batch+json';
/** Attributes the CloudEvents specification requires; the schemas require subject and time. */
const REQUIRED = ['specversion', 'id', 'source', 'type'] as const;

/** Media type without parameters, lower case: `application/json; charset=utf-8` → `application/json`. */
function mediaType(contentType: string | undefined): string | undefined {
  const type = contentType?.split(';')[0]?.trim().toLowerCase();
  return type === '' ? undefined : type;
}

const isJson = (type: string | undefined) =>
  type === undefined || type === 'application/json' || type.endsWith('+json');

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InvalidEvent('invalid-json', `${what} is not JSON: ${(err as Error).message}`);
  }
}

function checkSpecversion(specversion: unknown, where: string): void {
  if (specversion !== '1.0') {
    throw new InvalidEvent(
      'unsupported-specversion',
      `${where} ${JSON.stringify(specversion)}: only CloudEvents "1.0" is understood`,
    );
  }
}

function structured(text: string): unknown {
  const envelope = parseJson(text, 'the value');
  if (typeof envelope === 'object' && envelope !== null && !Array.isArray(envelope)) {
    const { specversion } = envelope as { specversion?: unknown };
    if (specversion !== undefined) checkSpecversion(specversion, 'specversion');
  }
  return envelope;
}

/**
 * The envelope of a binary-mode message: `attributes` are the header values by attribute name
 * (prefix removed), `header` names them as the sender wrote them (for errors).
 */
function binary(
  attributes: Map<string, string>,
  header: (name: string) => string,
  contentType: string | undefined,
  data: string,
): Record<string, unknown> {
  for (const name of REQUIRED) {
    if (!attributes.has(name))
      throw new InvalidEvent('invalid-envelope', `binary mode: header ${header(name)} is missing`);
  }
  checkSpecversion(attributes.get('specversion'), header('specversion'));
  // content-type is the data's type in binary mode; some senders repeat it as an attribute.
  contentType ??= attributes.get('datacontenttype');
  const type = mediaType(contentType);
  const envelope: Record<string, unknown> = Object.fromEntries(attributes);
  // The schemas name JSON data `application/json`, whatever parameters the header carried.
  envelope.datacontenttype = isJson(type) ? 'application/json' : contentType;
  envelope.data = isJson(type) ? parseJson(data, 'the data') : data;
  return envelope;
}

function text(value: string | Buffer | Uint8Array): string {
  return typeof value === 'string' ? value : Buffer.from(value).toString('utf8');
}

/** The envelope a Kafka message carries, in either mode (throws InvalidEvent). */
export function decodeKafkaEvent(headers: KafkaHeaders | undefined, value: Buffer | null): unknown {
  const byName = new Map<string, string>();
  for (const [name, raw] of Object.entries(headers ?? {})) {
    const first = Array.isArray(raw) ? raw[0] : raw;
    if (first !== undefined) byName.set(name.toLowerCase(), text(first as string | Buffer));
  }
  const contentType = byName.get('content-type');
  const body = value?.toString('utf8') ?? '';
  if (mediaType(contentType) === BATCH)
    throw new InvalidEvent('invalid-envelope', 'batched mode exists on HTTP only, not on Kafka');
  if (mediaType(contentType)?.startsWith('application/cloudevents')) return structured(body);
  const attributes = new Map<string, string>();
  for (const [name, v] of byName) if (name.startsWith('ce_')) attributes.set(name.slice(3), v);
  // Binary mode is announced by ce_specversion. Without it, a value that is an envelope is
  // structured mode (with or without the content-type: insurers first wrote it that way, and
  // the ce_type/ce_id/ce_source headers core itself adds only mirror the envelope); anything
  // else with ce_ headers is a binary message that lacks its specversion.
  if (!attributes.has('specversion')) {
    if (attributes.size === 0 || looksLikeEnvelope(body)) return structured(body);
  }
  return binary(attributes, (name) => `ce_${name}`, contentType, body);
}

function looksLikeEnvelope(body: string): boolean {
  try {
    const value: unknown = JSON.parse(body);
    return typeof value === 'object' && value !== null && 'specversion' in value;
  } catch {
    return false;
  }
}

/** The envelopes an HTTP request carries: one in structured or binary mode, several batched. */
export function decodeHttpEvents(
  headers: Headers | Record<string, string | undefined>,
  body: string,
): unknown[] {
  const entries: Array<[string, string]> =
    headers instanceof Headers
      ? [...headers.entries()]
      : Object.entries(headers).filter((e): e is [string, string] => e[1] !== undefined);
  const byName = new Map(entries.map(([n, v]) => [n.toLowerCase(), v]));
  const contentType = byName.get('content-type');
  const type = mediaType(contentType);
  if (type === BATCH) {
    const batch = parseJson(body, 'the batch');
    if (!Array.isArray(batch))
      throw new InvalidEvent('invalid-envelope', 'a batch must be a JSON array of events');
    return batch.map((envelope: unknown, i) => {
      const specversion = (envelope as { specversion?: unknown } | null)?.specversion;
      if (specversion !== undefined) checkSpecversion(specversion, `event ${i}: specversion`);
      return envelope;
    });
  }
  if (type?.startsWith('application/cloudevents')) return [structured(body)];
  const attributes = new Map<string, string>();
  for (const [name, v] of byName) {
    if (!name.startsWith('ce-')) continue;
    let decoded: string;
    try {
      decoded = decodeURIComponent(v); // the HTTP binding percent-encodes header values
    } catch {
      throw new InvalidEvent('invalid-envelope', `header ${name} is not percent-encoded UTF-8`);
    }
    attributes.set(name.slice(3), decoded);
  }
  if (attributes.size === 0) {
    throw new InvalidEvent(
      'invalid-envelope',
      `not a CloudEvent: no ce-specversion header, and content-type is not ${STRUCTURED} or ${BATCH}`,
    );
  }
  return [binary(attributes, (name) => `ce-${name}`, contentType, body)];
}

/** A Kafka message for `event` in the given mode (core's own events; headers mirror it). */
export function encodeKafkaEvent(
  event: CloudEvent,
  mode: EventMode,
): { value: string; headers: Record<string, string> } {
  if (mode === 'structured') return { value: JSON.stringify(event), headers: eventHeaders(event) };
  const { data, datacontenttype, ...attributes } = event;
  const headers: Record<string, string> = { 'content-type': datacontenttype };
  for (const [name, v] of Object.entries(attributes)) {
    if (v !== undefined) headers[`ce_${name}`] = String(v);
  }
  return { value: JSON.stringify(data), headers };
}
