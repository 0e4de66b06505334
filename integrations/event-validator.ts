/**
 * Validates an event against the envelope and its type's JSON Schema: a decoded envelope
 * (cloudevents-binding.ts, either content mode), or a structured message's value.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import * as addFormatsModule from 'ajv-formats';
import { EVENT_SCHEMAS } from './event-schemas.js';
import type { CloudEvent } from './events.js';

// ajv-formats is CommonJS; its function is the module's default export.
const addFormats = addFormatsModule.default as unknown as (ajv: Ajv) => Ajv;

export class InvalidEvent extends Error {
  constructor(
    readonly reason:
      | 'invalid-json'
      | 'invalid-envelope'
      | 'unsupported-specversion'
      | 'unknown-type'
      | 'schema-violation',
    message: string,
  ) {
    super(message);
    this.name = 'InvalidEvent';
  }
}

export interface EventValidator {
  /** The event, or throws InvalidEvent saying what is wrong. */
  validate(envelope: unknown): CloudEvent;
  /** The same, from a structured message's value (JSON). */
  parse(value: Buffer | null): CloudEvent;
}

export function createEventValidator(): EventValidator {
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats(ajv);
  const validators = new Map<string, ValidateFunction>();
  for (const [type, schema] of Object.entries(EVENT_SCHEMAS))
    validators.set(type, ajv.compile(schema));
  const validate = (event: unknown): CloudEvent => {
    if (typeof event !== 'object' || event === null || Array.isArray(event)) {
      throw new InvalidEvent('invalid-envelope', 'not a CloudEvents object');
    }
    const type = (event as { type?: unknown }).type;
    if (typeof type !== 'string') throw new InvalidEvent('invalid-envelope', 'missing "type"');
    const check = validators.get(type);
    if (!check) throw new InvalidEvent('unknown-type', `unknown event type "${type}"`);
    if (!check(event)) {
      const detail = (check.errors ?? [])
        .map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`)
        .join('; ');
      throw new InvalidEvent('schema-violation', detail.slice(0, 1000));
    }
    return event as CloudEvent;
  };
  return {
    validate,
    parse(value) {
      let event: unknown;
      try {
        event = JSON.parse(value?.toString('utf8') ?? '');
      } catch (err) {
        throw new InvalidEvent('invalid-json', `not JSON: ${(err as Error).message}`);
      }
      return validate(event);
    },
  };
}
