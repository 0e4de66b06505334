/** Resolvers for schema.graphql. They translate between the API and the sync services only. */
import type { SessionRecord } from '../../sync/session-record.js';
import type { OpenedSession } from '../../sync/session-service.js';
import { roleOf } from '../../sync/session-record.js';
import { FORM_VERSIONS, type Circumstance } from '../../sync/form-versions.js';
import type { GraphQLContext } from './context.js';
import type { SessionDocumentView } from '../../sync/signing-service.js';

interface SessionView {
  record: SessionRecord;
  myRole: 'A' | 'B';
  /** The document's state, read once per request however many fields ask for it. */
  document?: Promise<SessionDocumentView>;
}

function documentView(s: SessionView, ctx: GraphQLContext): Promise<SessionDocumentView> {
  return (s.document ??= ctx.services.signing.describe(s.record));
}

function sessionView(record: SessionRecord, ctx: GraphQLContext): SessionView | null {
  const { userId, deviceId } = ctx.principal;
  const role =
    roleOf(record, userId, deviceId) ??
    (record.parties.A.userId === userId
      ? 'A'
      : record.parties.B?.userId === userId
        ? 'B'
        : undefined);
  return role ? { record, myRole: role } : null;
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

export const resolvers = {
  Query: {
    me: (_: unknown, __: unknown, ctx: GraphQLContext) => ({
      id: ctx.principal.userId,
      deviceId: ctx.principal.deviceId,
      name: ctx.principal.name ?? null,
      roles: ctx.principal.roles,
    }),
    session: async (_: unknown, args: { id: string }, ctx: GraphQLContext) => {
      const record = await ctx.services.sessions.get(args.id);
      // Not a party: the same answer as an unknown id, so ids cannot be probed.
      return record ? sessionView(record, ctx) : null;
    },
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
      await ctx.services.signing.sign(
        ctx.principal,
        args.sessionId,
        args.contentHash,
        args.signature,
      );
      const record = await ctx.services.sessions.get(args.sessionId);
      return record ? sessionView(record, ctx) : null;
    },
    abandonSession: async (_: unknown, args: { sessionId: string }, ctx: GraphQLContext) => {
      const record = await ctx.services.sessions.abandon(ctx.principal, args.sessionId);
      return sessionView(record, ctx);
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
    constatId: async (s: SessionView, _: unknown, ctx: GraphQLContext) =>
      s.record.constatId ?? (await documentView(s, ctx)).constatId ?? null,
    contentHash: async (s: SessionView, _: unknown, ctx: GraphQLContext) =>
      (await documentView(s, ctx)).contentHash,
    signatures: async (s: SessionView, _: unknown, ctx: GraphQLContext) =>
      (await documentView(s, ctx)).signatures,
  },
  Circumstance: {
    label: (c: Circumstance, args: { lang: string }) =>
      (c.labels as unknown as Record<string, string | undefined>)[args.lang] ?? c.labels.fr,
  },
};
