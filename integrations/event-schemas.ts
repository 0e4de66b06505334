/**
 * JSON Schemas of every event on the Kafka contract (draft-07). This is the source; the files
 * in docs/events/ are written from it (`constat schemas`) and checked in CI to match.
 */
import { EventType } from './events.js';
import { ATTACHMENT_KINDS, ATTACHMENT_SECTIONS, ATTACHMENT_TYPES } from '../constat/attachments.js';

type Schema = Record<string, unknown>;

const uuid = { type: 'string', format: 'uuid' };
const money = {
  type: 'object',
  required: ['amount', 'currency'],
  properties: {
    amount: { type: 'number', minimum: 0 },
    currency: { type: 'string', pattern: '^[A-Z]{3}$' },
  },
};
const share = { type: 'integer', enum: [0, 50, 100] };
const text = { type: 'string' };
const number = { type: 'number' };
const objectOf = (required: string[], properties: Schema): Schema => ({
  type: 'object',
  required,
  properties,
});

/** Envelope + data schema for one event type. */
function event(
  type: string,
  description: string,
  data: Schema,
  source: Schema = { type: 'string', minLength: 1 },
): Schema {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: `urn:constat:schema:${type}`,
    title: type,
    description,
    type: 'object',
    required: ['specversion', 'id', 'source', 'type', 'subject', 'time', 'data'],
    properties: {
      specversion: { const: '1.0' },
      id: { type: 'string', minLength: 1, maxLength: 200 },
      source,
      type: { const: type },
      subject: { ...uuid, description: 'the constat id' },
      time: { type: 'string', format: 'date-time' },
      datacontenttype: { const: 'application/json' },
      dataschema: { type: 'string' },
      data,
    },
  };
}

const signature = {
  type: 'object',
  required: ['role', 'hash', 'signature', 'deviceId', 'userId', 'signedAt'],
  properties: {
    role: { enum: ['A', 'B'] },
    hash: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    signature: {
      type: 'string',
      description: 'base64 Ed25519 signature of constat-sign:v1:<sessionId>:<role>:<hash>',
    },
    deviceId: { type: 'string' },
    userId: { type: 'string' },
    publicKey: {
      type: 'string',
      description: 'base64 raw Ed25519 public key that verified the signature',
    },
    keyId: {
      type: 'string',
      description:
        'RFC 7638 JWK thumbprint (SHA-256, base64url) of that key: the id it stays registered under after the device replaces it',
    },
    signedAt: { type: 'string', format: 'date-time' },
  },
};
const attachment = {
  type: 'object',
  required: [
    'id',
    'role',
    'section',
    'kind',
    'contentType',
    'byteSize',
    'sha256',
    'url',
    'urlExpiresAt',
  ],
  properties: {
    id: uuid,
    role: { enum: ['A', 'B'], description: 'the party that uploaded it' },
    section: { enum: [...ATTACHMENT_SECTIONS] },
    kind: { enum: [...ATTACHMENT_KINDS] },
    contentType: { enum: [...ATTACHMENT_TYPES] },
    byteSize: { type: 'integer', minimum: 1 },
    sha256: {
      type: 'string',
      pattern: '^[0-9a-f]{64}$',
      description: 'SHA-256 of the file, as in the signed content (docs/signing.md)',
    },
    takenAt: { type: 'string', description: 'capture time the device recorded' },
    exif: {
      type: 'object',
      description: "what the file's own EXIF block says (metadata, not signed)",
      properties: {
        takenAt: { type: 'string' },
        gps: {
          type: 'object',
          required: ['lat', 'lon'],
          properties: { lat: { type: 'number' }, lon: { type: 'number' } },
        },
      },
    },
    url: { type: 'string', format: 'uri', description: 'time-limited download URL (GET)' },
    urlExpiresAt: { type: 'string', format: 'date-time' },
  },
};
const party = {
  type: 'object',
  required: ['userId', 'insurer'],
  properties: { userId: { type: 'string' }, insurer: { type: ['string', 'null'] } },
};

const liabilitySuggestion = {
  type: 'object',
  description:
    "Advisory only, never a decision: fault shares read from both parties' ticked boxes through the form version's rule table (docs/report.md).",
  required: [
    'formVersion',
    'shareA',
    'shareB',
    'rule',
    'description',
    'contradictory',
    'ticksA',
    'ticksB',
  ],
  properties: {
    formVersion: { type: 'string' },
    shareA: share,
    shareB: share,
    rule: {
      type: 'string',
      description:
        'the rule id that fired, contradictory claims keep the rule id; no-case when none applies',
    },
    description: { type: 'string' },
    contradictory: { type: 'boolean' },
    ticksA: { type: 'array', items: { type: 'integer' } },
    ticksB: { type: 'array', items: { type: 'integer' } },
  },
};

const claim = (required: string[], properties: Schema): Schema => ({
  type: 'object',
  required: ['claimNumber', ...required],
  properties: {
    claimNumber: { type: 'string', minLength: 1 },
    note: { type: 'string' },
    ...properties,
  },
});

export const EVENT_SCHEMAS: Readonly<Record<string, Schema>> = {
  [EventType.constatFinalized]: event(
    EventType.constatFinalized,
    'Core → insurers (topic = company uid) and AI services (topic constats): a constat signed by both drivers.',
    {
      type: 'object',
      required: [
        'constatId',
        'sessionId',
        'formVersion',
        'contentHash',
        'content',
        'signatures',
        'parties',
        'finalizedAt',
      ],
      properties: {
        constatId: uuid,
        sessionId: { type: 'string' },
        formVersion: { type: 'string' },
        contentHash: { type: 'string', pattern: '^[0-9a-f]{64}$' },
        content: {
          type: 'object',
          required: ['accident', 'vehicleA', 'vehicleB', 'sketch'],
          description: 'the signed content, as in docs/document.md',
        },
        signatures: { type: 'array', minItems: 2, maxItems: 2, items: signature },
        parties: { type: 'object', required: ['A', 'B'], properties: { A: party, B: party } },
        finalizedAt: { type: 'string', format: 'date-time' },
        attachments: {
          type: 'array',
          items: attachment,
          description:
            'the files the signed content names (absent in events written before attachments existed); a fresh URL: GraphQL Constat.attachments',
        },
        liabilitySuggestion,
      },
    },
    { const: 'constat-core' },
  ),
  [EventType.documentReady]: event(
    EventType.documentReady,
    'Core → insurers (topic = company uid): the signed report (PDF) of a finalized constat is stored. Sent after dz.constat.finalized.v1, once per rendered version.',
    {
      type: 'object',
      required: ['constatId', 'contentHash', 'document', 'url', 'urlExpiresAt'],
      properties: {
        constatId: uuid,
        contentHash: { type: 'string', pattern: '^[0-9a-f]{64}$' },
        document: {
          type: 'object',
          required: ['version', 'sha256', 'byteSize', 'contentType', 'template', 'createdAt'],
          properties: {
            version: { type: 'integer', minimum: 1 },
            sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
            byteSize: { type: 'integer', minimum: 1 },
            contentType: { const: 'application/pdf' },
            template: { type: 'string' },
            createdAt: { type: 'string', format: 'date-time' },
          },
        },
        url: {
          type: 'string',
          description:
            'download link, valid until urlExpiresAt (GraphQL Constat.pdf gives a fresh one)',
        },
        urlExpiresAt: { type: 'string', format: 'date-time' },
      },
    },
    { const: 'constat-core' },
  ),
  'dz.claim.received.v1': event(
    'dz.claim.received.v1',
    'Insurer → core: the constat was received.',
    {
      type: 'object',
      properties: { claimNumber: { type: 'string' }, note: { type: 'string' } },
    },
  ),
  'dz.claim.opened.v1': event(
    'dz.claim.opened.v1',
    'Insurer → core: a claim was opened.',
    claim([], {}),
  ),
  'dz.claim.documents_requested.v1': event(
    'dz.claim.documents_requested.v1',
    'Insurer → core: documents are needed from the insured.',
    claim(['documents'], { documents: { type: 'array', minItems: 1, items: { type: 'string' } } }),
  ),
  'dz.claim.expert_assigned.v1': event(
    'dz.claim.expert_assigned.v1',
    'Insurer → core: an expert was assigned (and possibly an appointment set).',
    claim(['expert'], {
      expert: {
        type: 'object',
        required: ['name'],
        properties: { name: { type: 'string' }, phone: { type: 'string' } },
      },
      appointmentAt: { type: 'string', format: 'date-time' },
    }),
  ),
  'dz.claim.estimate_provided.v1': event(
    'dz.claim.estimate_provided.v1',
    'Insurer → core: an estimate or expert report.',
    claim(['estimate'], { estimate: money, reportUrl: { type: 'string' } }),
  ),
  'dz.claim.liability_decided.v1': event(
    'dz.claim.liability_decided.v1',
    'Insurer → core: the liability decision (shares in %) and the convention case applied.',
    claim(['shareA', 'shareB'], {
      shareA: share,
      shareB: share,
      conventionCase: { type: 'string' },
    }),
  ),
  'dz.claim.settled.v1': event(
    'dz.claim.settled.v1',
    'Insurer → core: the claim was paid.',
    claim(['payment'], { payment: money, paidAt: { type: 'string', format: 'date-time' } }),
  ),
  'dz.claim.rejected.v1': event(
    'dz.claim.rejected.v1',
    'Insurer → core: the claim was rejected (e.g. late declaration, no cover).',
    {
      type: 'object',
      required: ['reason'],
      properties: { claimNumber: { type: 'string' }, reason: { type: 'string', minLength: 1 } },
    },
  ),
  'dz.claim.closed.v1': event(
    'dz.claim.closed.v1',
    'Insurer → core: the claim is closed.',
    claim([], { reason: { type: 'string' } }),
  ),
  'dz.ai.fraud_scored.v1': event(
    'dz.ai.fraud_scored.v1',
    'AI → core (topic ai-results): fraud score 0–1 and the signals seen.',
    {
      type: 'object',
      required: ['score', 'signals'],
      properties: {
        score: { type: 'number', minimum: 0, maximum: 1 },
        signals: { type: 'array', items: { type: 'string' } },
        model: { type: 'string' },
        band: { enum: ['low', 'review', 'high'] },
        ruleSet: { type: 'string', description: 'id of the rule set (weights and thresholds)' },
        intercept: { type: 'number' },
        findings: {
          type: 'array',
          description: 'every signal that fired, strongest first',
          items: objectOf(['name', 'weight', 'reason'], {
            name: text,
            label: text,
            weight: { type: 'number', description: 'log-odds per unit of value' },
            value: { type: 'number', minimum: 0, maximum: 1 },
            contribution: number,
            reason: text,
            values: { type: 'object' },
          }),
        },
      },
    },
  ),
  'dz.ai.ocr_verified.v1': event(
    'dz.ai.ocr_verified.v1',
    'AI → core: a document read by OCR and checked against the constat.',
    {
      type: 'object',
      required: ['document', 'verified'],
      properties: {
        document: {
          type: 'string',
          description: 'the paper: licence, registration or insurance_certificate',
        },
        verified: { type: 'boolean' },
        mismatches: {
          type: 'array',
          items: { type: 'string' },
          description: 'names of the fields that differ',
        },
        // Added compatibly (optional): the details behind the verdict (docs/ai.md).
        verdict: { enum: ['verified', 'mismatch', 'unreadable'] },
        attachmentId: text,
        role: { enum: ['A', 'B'] },
        sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
        fields: {
          type: 'array',
          description: 'each field compared: what the party typed, what the paper says',
          items: objectOf(['field', 'read', 'similarity', 'match'], {
            field: text,
            typed: { type: ['string', 'null'] },
            read: text,
            similarity: { type: 'number', minimum: 0, maximum: 1 },
            match: { type: 'boolean' },
          }),
        },
        read: {
          type: 'object',
          description: 'every field read from the paper',
          additionalProperties: text,
        },
        reason: { type: 'string', description: 'why the paper is unreadable' },
        engine: { type: 'string', description: 'the OCR engine and its version' },
      },
    },
  ),
  'dz.ai.cost_estimated.v1': event(
    'dz.ai.cost_estimated.v1',
    'AI → core: estimated repair cost per vehicle.',
    {
      type: 'object',
      required: ['estimates'],
      properties: {
        estimates: {
          type: 'array',
          items: {
            type: 'object',
            required: ['vehicle', 'amount', 'currency'],
            properties: {
              vehicle: { enum: ['A', 'B'] },
              ...money.properties,
              low: { type: 'number', minimum: 0 },
              high: { type: 'number', minimum: 0 },
              confidence: { type: 'number', minimum: 0, maximum: 1 },
              segment: { type: 'string' },
              vehicleAgeYears: { type: ['integer', 'null'] },
              wilaya: { type: ['string', 'null'] },
              subtotal: { type: 'number' },
              vat: { type: 'number' },
              lines: {
                type: 'array',
                items: objectOf(['part', 'operation', 'amount'], {
                  part: text,
                  label: text,
                  side: text,
                  severity: text,
                  operation: { enum: ['paint', 'repair', 'replace'] },
                  ...Object.fromEntries(
                    [
                      'partsAmount',
                      'depreciationRate',
                      'labourHours',
                      'labourAmount',
                      'paintHours',
                      'paintAmount',
                      'materialsAmount',
                      'amount',
                    ].map((k) => [k, number]),
                  ),
                }),
              },
              notes: { type: 'array', items: { type: 'string' } },
              tables: {
                type: 'array',
                items: { type: 'string' },
                description: 'versions of the cost tables used',
              },
            },
          },
        },
      },
    },
  ),
  'dz.ai.video_generated.v1': event(
    'dz.ai.video_generated.v1',
    'AI → core: a reconstruction video of the accident.',
    {
      type: 'object',
      required: ['url'],
      properties: {
        url: { type: 'string', format: 'uri' },
        durationSeconds: { type: 'number', minimum: 0 },
      },
    },
  ),
};

export const CLAIM_EVENT_PREFIX = 'dz.claim.';
export const AI_EVENT_PREFIX = 'dz.ai.';
