/** Resolvers for schema.graphql. They translate between the API and the sync services only. */
import type { SessionRecord } from '../../sync/session-record.js';
import type { OpenedSession } from '../../sync/session-service.js';
import { roleOf } from '../../sync/session-record.js';
import { FORM_VERSIONS, type Circumstance } from '../../sync/form-versions.js';
import { COMPANIES } from '../../integrations/companies.js';
import type { GraphQLContext } from './context.js';

interface SessionView {
  record: SessionRecord;
  myRole: 'A' | 'B';
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
    insurers: () => COMPANIES,
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
    constatId: (s: SessionView) => s.record.constatId ?? null,
  },
  Circumstance: {
    label: (c: Circumstance, args: { lang: string }) =>
      (c.labels as unknown as Record<string, string | undefined>)[args.lang] ?? c.labels.fr,
  },
};
