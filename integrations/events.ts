/**
 * The one event envelope: CloudEvents 1.0, structured JSON mode. Every event core publishes is
 * built here; every event read from Kafka is parsed against it (with its JSON Schema).
 */
import { randomUUID } from 'node:crypto';
import type { LiabilitySuggestion } from '../constat/liability.js';
import type { FinalizedAttachment } from '../media/attachment-service.js';

export const CORE_SOURCE = 'constat-core';
export const CONSTATS_TOPIC = 'constats';
export const AI_RESULTS_TOPIC = 'ai-results';

export const EventType = {
  constatFinalized: 'dz.constat.finalized.v1',
  documentReady: 'dz.constat.document_ready.v1',
} as const;

export interface CloudEvent<T = unknown> {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  subject: string;
  time: string;
  datacontenttype: 'application/json';
  dataschema: string;
  data: T;
}

/** Where the JSON Schema of an event type is published (docs/events/<type>.json). */
export function schemaUri(type: string): string {
  return `urn:constat:schema:${type}`;
}

export function cloudEvent<T>(
  type: string,
  subject: string,
  data: T,
  opts: { source?: string; id?: string; time?: Date } = {},
): CloudEvent<T> {
  return {
    specversion: '1.0',
    id: opts.id ?? randomUUID(),
    source: opts.source ?? CORE_SOURCE,
    type,
    subject,
    time: (opts.time ?? new Date()).toISOString(),
    datacontenttype: 'application/json',
    dataschema: schemaUri(type),
    data,
  };
}

/** Kafka headers that mirror the envelope (so a consumer can route without parsing JSON). */
export function eventHeaders(event: CloudEvent): Record<string, string> {
  return {
    ce_type: event.type,
    ce_id: event.id,
    ce_source: event.source,
    'content-type': 'application/cloudevents+json',
  };
}

export interface ConstatFinalizedData {
  constatId: string;
  sessionId: string;
  formVersion: string;
  contentHash: string;
  /** The signed content (canonical content roots). */
  content: unknown;
  signatures: Array<{
    role: 'A' | 'B';
    hash: string;
    signature: string;
    deviceId: string;
    userId: string;
    /** base64 raw Ed25519 key that verified the signature. */
    publicKey?: string;
    /** RFC 7638 thumbprint of that key: its id in the device key registry. */
    keyId?: string;
    signedAt: string;
  }>;
  parties: {
    A: { userId: string; insurer: string | null };
    B: { userId: string; insurer: string | null };
  };
  finalizedAt: string;
  /** Files the signed content names, with time-limited download URLs (docs/media.md). */
  attachments?: FinalizedAttachment[];
  /**
   * Advisory fault shares from both parties' ticked boxes (constat/liability.ts); absent when the
   * form version has no rule table. For insurers only: drivers never see it.
   */
  liabilitySuggestion?: LiabilitySuggestion;
}

/** The signed report (PDF) of a constat is stored: rendered after finalization, announced apart. */
export interface ConstatDocumentReadyData {
  constatId: string;
  contentHash: string;
  document: {
    version: number;
    sha256: string;
    byteSize: number;
    contentType: string;
    template: string;
    createdAt: string;
  };
  /** A download link, valid until `urlExpiresAt`; GraphQL `Constat.pdf` gives a fresh one. */
  url: string;
  urlExpiresAt: string;
}
