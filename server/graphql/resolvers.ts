/** Resolvers for schema.graphql. They translate between the API and the services only. */
import type { SessionRecord } from '../../constat/session-record.js';
import type { OpenedSession } from '../../sync/session-service.js';
import type { SessionDocumentView } from '../../sync/signing-service.js';
import { roleOf } from '../../constat/session-record.js';
import { ConstatError } from '../../constat/errors.js';
import {
  FORM_VERSIONS,
  getFormVersion,
  labelIn,
  type Circumstance,
  type FormVersion,
} from '../../constat/form-versions.js';
import { FIELD_LABEL_KEYS, type Label } from '../../constat/form-labels.js';
import { suggestLiabilityFromContent } from '../../constat/liability.js';
import type { StoredDocument } from '../../persistence/documents-repository.js';
import type { ConstatStatus } from '../../persistence/constats-repository.js';
import type { TimelineEvent } from '../../persistence/timeline-repository.js';
import type { SignatureRecord } from '../../constat/constat-doc.js';
import type { GraphQLContext } from './context.js';
import type { VisibleConstat } from './loaders.js';
import type { ConstatContent } from '../../constat/constat-doc.js';
import type { AttachmentView } from '../../media/attachment-service.js';
import {
  COST_ESTIMATED,
  FRAUD_SCORED,
  costEstimates,
  fraudAssessment,
  insurerOf,
} from './ai-findings.js';
import { changeStream } from './change-stream.js';

interface SessionView {
  record: SessionRecord;
  myRole: 'A' | 'B';
  /** The document's state, read once per request however many fields ask for it. */
  document?: Promise<SessionDocumentView>;
}

type Json = Record<string, unknown>;

function sessionView(record: SessionRecord | null, ctx: GraphQLContext): SessionView | null {
  if (!record) return null;
  const { userId, deviceId } = ctx.principal;
  const role =
    roleOf(record, userId, deviceId) ??
    (record.parties.A.userId === userId
      ? 'A'
      : record.parties.B?.userId === userId
        ? 'B'
        : undefined);
  // Not a party: the same answer as an unknown id, so ids cannot be probed.
  return role ? { record, myRole: role } : null;
}

function documentView(s: SessionView, ctx: GraphQLContext): Promise<SessionDocumentView> {
  const { constatId } = s.record;
  return (s.document ??=
    s.record.status === 'finalized' && constatId
      ? storedDocumentView(s.record, constatId, ctx)
      : ctx.services.signing.describe(s.record));
}

/**
 * A finalized session answers from its constat: what was signed is stored there for good, and
 * loading the document again only to read it would be wasted work.
 */
async function storedDocumentView(
  record: SessionRecord,
  constatId: string,
  ctx: GraphQLContext,
): Promise<SessionDocumentView> {
  const stored = await ctx.services.constats.get(constatId);
  if (!stored) return ctx.services.signing.describe(record);
  const signatures = asObject(stored.signatures);
  return {
    contentHash: stored.contentHash,
    constatId,
    signatures: (['A', 'B'] as const).flatMap((role) =>
      signatures[role] ? [{ role, ...(signatures[role] as SignatureRecord) }] : [],
    ),
  };
}

/** What a session subscriber is told about: a new message only when one of these changed. */
async function sessionState(id: string, ctx: GraphQLContext) {
  let value = await requireSession(id, ctx);
  const read = await documentView(value, ctx);
  let { signatures } = read;
  // The record is read before the document. A finalization committed between the two reads
  // shows in the document (its constat id is written there only after the commit that also
  // finalizes the record) but not in the record read before it: read the record again, so a
  // message shows one state and not half of two.
  if (read.constatId && value.record.status !== 'finalized') {
    value = await requireSession(id, ctx);
    ({ signatures } = await documentView(value, ctx));
  }
  const key = JSON.stringify([
    value.record.status,
    value.record.constatId ?? null,
    value.record.parties.B?.userId ?? null,
    signatures.map((s) => [s.role, s.hash, s.signedAt]),
  ]);
  return { value, key };
}

/**
 * What a constat subscriber is told about: its status, its timeline (events are only added) and
 * its latest report version (the rendered PDF is announced, so apps need not poll for it).
 */
async function constatState(id: string, ctx: GraphQLContext) {
  // A subscription lives long: read afresh at every change.
  ctx.loaders.constat.clear(id);
  ctx.loaders.timeline.clear(id);
  ctx.loaders.documents.clear(id);
  const value = await requireConstat(id, ctx);
  const [events, documents] = await Promise.all([
    ctx.loaders.timeline.load(id),
    ctx.loaders.documents.load(id),
  ]);
  const report = documents.at(-1)?.version ?? 0;
  return { value, key: JSON.stringify([value.status, events.length, report]) };
}

/**
 * The changes of one object as a subscriber sees them (change-stream.ts): the state it
 * subscribed in is what it knows; a subscriber that stops reading is cut off.
 */
async function changesOf<T>(
  field: 'sessionChanged' | 'constatChanged',
  id: string,
  ctx: GraphQLContext,
  read: () => Promise<{ value: T; key: string }>,
) {
  const stream = changeStream<T>({
    notices: ctx.services.pubsub.subscribe(field, id),
    read,
    maxUnread: ctx.services.subscriptionBuffer,
    cutOff: (unread) => {
      ctx.services.metrics.subscriptionsCutOff.inc();
      ctx.services.logger.warn(
        { field, id, userId: ctx.principal.userId, unread },
        'subscriber cut off: it stopped reading',
      );
      ctx.subscriber?.cutOff(
        'SUBSCRIBER_TOO_SLOW',
        `more than ${ctx.services.subscriptionBuffer} changes went unread: subscribe again and read the current state`,
      );
    },
  });
  try {
    // Also refuses a caller who may not see the object (NOT_FOUND).
    stream.knows((await read()).key);
  } catch (err) {
    await stream.return!();
    throw err;
  }
  return stream;
}

function ticket(opened: OpenedSession, ctx: GraphQLContext) {
  const { session, role, joinCode, joinCodeExpiresAt } = opened;
  return {
    session: { record: session, myRole: role } satisfies SessionView,
    role,
    syncUrl: new URL(`/v1/sync/${session.id}`, ctx.publicWsBase).toString(),
    joinCode: joinCode ?? null,
    joinCodeExpiresAt: joinCodeExpiresAt ?? null,
    qrPayload: joinCode ? `constat://join?code=${joinCode}` : null,
  };
}

const insurer = (ctx: GraphQLContext, uid: unknown) =>
  typeof uid === 'string'
    ? (ctx.services.registry.list().find((c) => c.uid === uid) ?? { uid, name: uid })
    : null;

const asObject = (value: unknown): Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : {};

const CLAIM_STATUS: Record<string, ConstatStatus> = {
  'dz.claim.settled.v1': 'SETTLED',
  'dz.claim.rejected.v1': 'REJECTED',
  'dz.claim.closed.v1': 'CLOSED',
};

interface DocumentView {
  document: StoredDocument;
  url: Promise<string>;
}

function reportView(document: StoredDocument, ctx: GraphQLContext): DocumentView {
  const url = ctx.services.reports.url(document).then((u) => reachable(u, ctx));
  url.catch(() => {}); // read (and its error reported) only if the query asks for the url
  return { document, url };
}

/** The latest report or the version asked for; UNAVAILABLE when none exists and none can be made. */
async function pdfOf(
  c: VisibleConstat,
  version: number | undefined,
  ctx: GraphQLContext,
): Promise<DocumentView | null> {
  const documents = await ctx.loaders.documents.load(c.id);
  if (documents.length === 0 && !ctx.services.reports.available) {
    throw new ConstatError('UNAVAILABLE', ctx.services.reports.unavailableReason);
  }
  const document =
    version === undefined ? documents.at(-1) : documents.find((d) => d.version === version);
  return document ? reportView(document, ctx) : null;
}

/**
 * The file store's URLs are served by this server and name it by PUBLIC_URL or its own
 * address; a caller gets them with the origin it reached the server by (the signature covers
 * the path and query only). Presigned S3 URLs are left as they are.
 */
function reachable<T extends string | null>(url: T, ctx: GraphQLContext): T {
  if (url === null || ctx.services.attachments.storeKind !== 'files') return url;
  const rebased = new URL(url);
  const base = new URL(ctx.publicHttpBase);
  rebased.protocol = base.protocol;
  rebased.host = base.host;
  return rebased.toString() as T;
}

async function requireSession(id: string, ctx: GraphQLContext): Promise<SessionView> {
  const view = sessionView(await ctx.services.sessions.get(id), ctx);
  if (!view) throw new ConstatError('NOT_FOUND', 'unknown session');
  return view;
}

async function requireConstat(id: string, ctx: GraphQLContext): Promise<VisibleConstat> {
  const constat = await ctx.loaders.constat.load(id);
  if (!constat) throw new ConstatError('NOT_FOUND', 'unknown constat');
  return constat;
}

export const resolvers = {
  Query: {
    me: (_: unknown, __: unknown, ctx: GraphQLContext) => ({
      id: ctx.principal.userId,
      deviceId: ctx.principal.deviceId,
      name: ctx.principal.name ?? null,
      roles: ctx.principal.roles,
    }),
    constats: async (
      _: unknown,
      args: { first: number; after?: string | null; status?: ConstatStatus | null },
      ctx: GraphQLContext,
    ) => {
      const max = ctx.services.maxPageSize;
      if (!Number.isInteger(args.first) || args.first < 1 || args.first > max) {
        throw new ConstatError('BAD_USER_INPUT', `first must be between 1 and ${max}`, {
          field: 'first',
        });
      }
      const after = args.after
        ? ctx.services.cursors.decode(ctx.viewer.userId, args.after)
        : undefined;
      const { rows, hasNext } = await ctx.services.constats.listVisible(ctx.viewer, {
        first: args.first,
        ...(after ? { after } : {}),
        ...(args.status ? { status: args.status } : {}),
      });
      for (const row of rows) ctx.loaders.constat.prime(row.id, row);
      const edges = rows.map((node) => ({
        node,
        cursor: ctx.services.cursors.encode(ctx.viewer.userId, {
          position: node.position,
          id: node.id,
        }),
      }));
      return { edges, pageInfo: { hasNextPage: hasNext, endCursor: edges.at(-1)?.cursor ?? null } };
    },
    constat: (_: unknown, args: { id: string }, ctx: GraphQLContext) =>
      ctx.loaders.constat.load(args.id),
    session: async (_: unknown, args: { id: string }, ctx: GraphQLContext) =>
      sessionView(await ctx.services.sessions.get(args.id), ctx),
    formVersions: () => FORM_VERSIONS,
    insurers: (_: unknown, __: unknown, ctx: GraphQLContext) =>
      ctx.services.registry.list().filter((c) => c.active),
  },

  Mutation: {
    openSession: async (_: unknown, args: { formVersion: string }, ctx: GraphQLContext) => {
      const opened = await ctx.services.sessions.open(ctx.principal, args.formVersion);
      ctx.services.metrics.sessionsOpened.inc();
      return ticket(opened, ctx);
    },
    joinSession: async (_: unknown, args: { code: string }, ctx: GraphQLContext) => {
      try {
        const joined = await ctx.services.sessions.join(ctx.principal, args.code.trim());
        ctx.services.metrics.sessionsJoined.inc();
        return ticket(joined, ctx);
      } catch (err) {
        ctx.services.metrics.joinFailures.inc({
          reason: (err as { code?: string }).code ?? 'error',
        });
        throw err;
      }
    },
    registerDevice: async (_: unknown, args: { publicKey: string }, ctx: GraphQLContext) => {
      const device = await ctx.services.signing.registerDevice(ctx.principal, args.publicKey);
      return {
        ...device,
        registeredAt: device.registeredAt.toISOString(),
        updatedAt: device.updatedAt.toISOString(),
      };
    },
    signConstat: async (
      _: unknown,
      args: { sessionId: string; contentHash: string; signature: string },
      ctx: GraphQLContext,
    ) => {
      // Built from what signing read: the answer must not need the database again (it may be
      // down, and finalization then completes on its own once it is back).
      const { session, constatId, document } = await ctx.services.signing.sign(
        ctx.principal,
        args.sessionId,
        args.contentHash,
        args.signature,
      );
      const record: SessionRecord = constatId
        ? { ...session, status: 'finalized', constatId }
        : session;
      const view = sessionView(record, ctx);
      if (view) view.document = Promise.resolve(document);
      return view;
    },
    requestUpload: async (
      _: unknown,
      args: {
        sessionId: string;
        kind: string;
        contentType: string;
        byteSize: number;
        sha256: string;
      },
      ctx: GraphQLContext,
    ) => {
      // Only a party's own device, while the session is open (a finalized one is GONE).
      const { session, role } = await ctx.services.sessions.authorizeDevice(
        args.sessionId,
        ctx.principal,
      );
      const slot = await ctx.services.attachments.requestUpload({
        sessionId: session.id,
        role,
        userId: ctx.principal.userId,
        kind: args.kind,
        contentType: args.contentType,
        byteSize: args.byteSize,
        sha256: args.sha256,
      });
      return { ...slot, url: reachable(slot.url, ctx) };
    },
    abandonSession: async (_: unknown, args: { sessionId: string }, ctx: GraphQLContext) => {
      const record = await ctx.services.sessions.abandon(ctx.principal, args.sessionId);
      return sessionView(record, ctx);
    },
  },

  Subscription: {
    // The payload is the state read by the change stream: resolving it reads nothing more
    // that could raise a change.
    sessionChanged: {
      subscribe: (_: unknown, args: { id: string }, ctx: GraphQLContext) =>
        changesOf('sessionChanged', args.id, ctx, () => sessionState(args.id, ctx)),
      resolve: (payload: SessionView) => payload,
    },
    constatChanged: {
      subscribe: (_: unknown, args: { id: string }, ctx: GraphQLContext) =>
        changesOf('constatChanged', args.id, ctx, () => constatState(args.id, ctx)),
      resolve: (payload: VisibleConstat) => payload,
    },
  },

  Session: {
    id: (s: SessionView) => s.record.id,
    formVersion: (s: SessionView) => s.record.formVersion,
    status: (s: SessionView) => s.record.status.toUpperCase(),
    myRole: (s: SessionView) => s.myRole,
    parties: (s: SessionView) => {
      const { A, B } = s.record.parties;
      return [{ role: 'A', ...A }, ...(B ? [{ role: 'B', ...B }] : [])];
    },
    createdAt: (s: SessionView) => s.record.createdAt,
    expiresAt: (s: SessionView) => s.record.expiresAt,
    // From the record only, as the status is: the document learns its constat id right after
    // the commit that finalizes the record, and the two read apart would show a session both
    // active and finalized.
    constatId: (s: SessionView) => s.record.constatId ?? null,
    contentHash: async (s: SessionView, _: unknown, ctx: GraphQLContext) =>
      (await documentView(s, ctx)).contentHash,
    signatures: async (s: SessionView, _: unknown, ctx: GraphQLContext) =>
      (await documentView(s, ctx)).signatures,
    attachments: async (s: SessionView, _: unknown, ctx: GraphQLContext) => {
      const constatId = s.record.constatId ?? (await documentView(s, ctx)).constatId;
      const constat = constatId ? await ctx.services.constats.get(constatId) : null;
      if (constat) {
        return ctx.services.attachments.forConstat(s.record.id, constat.content as ConstatContent);
      }
      const content = await ctx.services.signing.content(s.record);
      return ctx.services.attachments.forSession(s.record.id, content);
    },
  },

  Attachment: {
    url: (a: AttachmentView, _: unknown, ctx: GraphQLContext) => reachable(a.url, ctx),
    exifTakenAt: (a: AttachmentView) => a.exif?.takenAt ?? null,
    exifGps: (a: AttachmentView) => a.exif?.gps ?? null,
  },

  Constat: {
    finalizedAt: (c: VisibleConstat) => c.finalizedAt.toISOString(),
    signedAt: (c: VisibleConstat) => c.signedAt.toISOString(),
    parties: (c: VisibleConstat, _: unknown, ctx: GraphQLContext) => [
      { role: 'A', userId: c.partyAUser, insurer: insurer(ctx, c.insurerA) },
      { role: 'B', userId: c.partyBUser, insurer: insurer(ctx, c.insurerB) },
    ],
    accident: (c: VisibleConstat) => {
      const accident = asObject(asObject(c.content).accident);
      return {
        ...accident,
        witnesses: Array.isArray(accident.witnesses) ? accident.witnesses : [],
      };
    },
    vehicles: (c: VisibleConstat) =>
      (['A', 'B'] as const).map((role) => ({
        ...asObject(asObject(c.content)[`vehicle${role}`]),
        role,
        formVersion: c.formVersion,
      })),
    signatures: (c: VisibleConstat) => {
      const signatures = asObject(c.signatures);
      return (['A', 'B'] as const).flatMap((role) =>
        signatures[role] ? [{ role, ...asObject(signatures[role]) }] : [],
      );
    },
    claims: async (c: VisibleConstat, _: unknown, ctx: GraphQLContext) => {
      const byInsurer = new Map<string, TimelineEvent[]>();
      for (const e of await ctx.loaders.timeline.load(c.id)) {
        if (!e.type.startsWith('dz.claim.')) continue;
        byInsurer.set(e.topic, [...(byInsurer.get(e.topic) ?? []), e]);
      }
      return [...byInsurer].map(([uid, events]) => {
        const last = events.at(-1)!;
        const numbered = events
          .map((e) => asObject(e.data).claimNumber)
          .filter((n): n is string => typeof n === 'string');
        return {
          insurer: insurer(ctx, uid),
          claimNumber: numbered.at(-1) ?? null,
          status: CLAIM_STATUS[last.type] ?? 'IN_PROGRESS',
          events,
        };
      });
    },
    aiFindings: async (c: VisibleConstat, _: unknown, ctx: GraphQLContext) =>
      (await ctx.loaders.timeline.load(c.id)).filter(
        (e) => e.type.startsWith('dz.ai.') && (e.type !== FRAUD_SCORED || insurerOf(c, ctx)),
      ),
    fraudAssessment: async (c: VisibleConstat, _: unknown, ctx: GraphQLContext) => {
      // Drivers never see fraud scores: only staff of one of the constat's insurers.
      if (!insurerOf(c, ctx)) return null;
      const scored = (await ctx.loaders.timeline.load(c.id)).filter((e) => e.type === FRAUD_SCORED);
      return fraudAssessment(scored.at(-1));
    },
    costEstimates: async (c: VisibleConstat, _: unknown, ctx: GraphQLContext) => {
      const events = await ctx.loaders.timeline.load(c.id);
      return costEstimates(events.filter((e) => e.type === COST_ESTIMATED).at(-1));
    },
    attachments: (c: VisibleConstat, _: unknown, ctx: GraphQLContext) =>
      ctx.services.attachments.forConstat(c.sessionId, c.content as ConstatContent),
    pdf: (c: VisibleConstat, args: { version?: number | null }, ctx: GraphQLContext) =>
      pdfOf(c, args.version ?? undefined, ctx),
    documents: async (c: VisibleConstat, _: unknown, ctx: GraphQLContext) =>
      (await ctx.loaders.documents.load(c.id)).map((d) => reportView(d, ctx)),
    pdfUrl: async (c: VisibleConstat, _: unknown, ctx: GraphQLContext) =>
      (await pdfOf(c, undefined, ctx))?.url ?? null,
    liabilitySuggestion: (c: VisibleConstat, _: unknown, ctx: GraphQLContext) => {
      // For the parties' insurers only: a driver who sees a suggested share could take it for
      // a decision, and it is not one.
      const insurers = ctx.viewer.insurers;
      const mayRead =
        (c.insurerA !== null && insurers.includes(c.insurerA)) ||
        (c.insurerB !== null && insurers.includes(c.insurerB));
      return mayRead ? (suggestLiabilityFromContent(c.formVersion, c.content) ?? null) : null;
    },
  },

  ConstatDocument: {
    url: (d: DocumentView) => d.url,
    createdAt: (d: DocumentView) => d.document.createdAt.toISOString(),
    sha256: (d: DocumentView) => d.document.sha256,
    version: (d: DocumentView) => d.document.version,
    byteSize: (d: DocumentView) => d.document.byteSize,
    template: (d: DocumentView) => d.document.template,
  },

  FormVersion: {
    labels: (f: FormVersion) => FIELD_LABEL_KEYS.map((key) => ({ key, labels: f.fields[key] })),
  },

  FieldLabel: {
    label: (f: { labels: Label }, args: { lang: string }) => labelIn(f.labels, args.lang),
  },

  FraudSignal: {
    values: (s: { values?: unknown }) => JSON.stringify(s.values ?? {}),
  },

  TimelineEvent: {
    id: (e: TimelineEvent) => e.eventId,
    time: (e: TimelineEvent) => e.time.toISOString(),
    data: (e: TimelineEvent) => JSON.stringify(e.data),
  },

  Vehicle: {
    insurer: (v: Json, _: unknown, ctx: GraphQLContext) => {
      const details = asObject(v.insurer);
      return { ...details, company: insurer(ctx, details.company) };
    },
    circumstances: (v: Json & { formVersion: string }) => {
      const ticked = asObject(v.circumstances);
      const boxes = getFormVersion(v.formVersion)?.circumstances ?? [];
      return boxes.filter((b) => ticked[String(b.id)] === true);
    },
    circumstanceCount: (v: Json) =>
      typeof v.circumstanceCount === 'number' ? v.circumstanceCount : null,
  },

  Circumstance: {
    label: (c: Circumstance, args: { lang: string }) => labelIn(c.labels, args.lang),
  },
};
