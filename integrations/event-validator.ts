/** Parses and validates one Kafka message against the envelope and its type's JSON Schema. */
import { Ajv, type ValidateFunction } from 'ajv';
import * as addFormatsModule from 'ajv-formats';
import { EVENT_SCHEMAS } from './event-schemas.js';
import type { CloudEvent } from './events.js';

// ajv-formats is CommonJS; its function is the module's default export.
const addFormats = addFormatsModule.default as unknown as (ajv: Ajv) => Ajv;

export class InvalidEvent extends Error {
  constructor(
    readonly reason: 'invalid-json' | 'invalid-envelope' | 'unknown-type' | 'schema-violation',
    message: string,
  ) {
    super(message);
    this.name = 'InvalidEvent';
  }
}

export interface EventValidator {
  /** The event, or throws InvalidEvent saying what is wrong. */
  parse(value: Buffer | null): CloudEvent;
}

export function createEventValidator(): EventValidator {
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats(ajv);
  const validators = new Map<string, ValidateFunction>();
  for (const [type, schema] of Object.entries(EVENT_SCHEMAS))
    validators.set(type, ajv.compile(schema));
  return {
    parse(value) {
      let event: unknown;
      try {
        event = JSON.parse(value?.toString('utf8') ?? '');
      } catch (err) {
        throw new InvalidEvent('invalid-json', `not JSON: ${(err as Error).message}`);
      }
      if (typeof event !== 'object' || event === null || Array.isArray(event)) {
        throw new InvalidEvent('invalid-envelope', 'not a CloudEvents object');
      }
      const type = (event as { type?: unknown }).type;
      if (typeof type !== 'string') throw new InvalidEvent('invalid-envelope', 'missing "type"');
      const validate = validators.get(type);
      if (!validate) throw new InvalidEvent('unknown-type', `unknown event type "${type}"`);
      if (!validate(event)) {
        const detail = (validate.errors ?? [])
          .map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`)
          .join('; ');
        throw new InvalidEvent('schema-violation', detail.slice(0, 1000));
      }
      return event as CloudEvent;
    },
  };
}
