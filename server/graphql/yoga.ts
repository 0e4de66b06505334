/**
 * GraphQL Yoga, built once per server. Errors are mapped in one place: a ConstatError becomes
 * a GraphQL error whose `extensions.code` is the contract's code; a query the server refuses to
 * run (syntax, unknown field, too deep, too costly…) is BAD_USER_INPUT; anything else is
 * masked (no stack traces leave the server) and logged.
 */
import { readFileSync } from 'node:fs';
import { createSchema, createYoga, type Plugin } from 'graphql-yoga';
import { GraphQLError } from 'graphql';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import { costLimit } from './cost-limit.js';
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import { useDisableIntrospection } from '@graphql-yoga/plugin-disable-introspection';
import type { Logger } from 'pino';
import { ConstatError } from '../../constat/errors.js';
import type { GraphQLLimits } from '../config.js';
import { resolvers } from './resolvers.js';
import type { GraphQLContext } from './context.js';

export const SCHEMA_SDL = readFileSync(new URL('./schema.graphql', import.meta.url), 'utf8');

export type ConstatYoga = ReturnType<typeof createGraphQL>;

/** Gives parse and validation errors (including the limits below) the contract's code. */
const refusedQueriesAreBadInput: Plugin = {
  onParse:
    () =>
    ({ result, replaceParseResult }) => {
      if (result instanceof GraphQLError) replaceParseResult(withCode(result));
    },
  onValidate:
    () =>
    ({ result, setResult }) => {
      if (result.length > 0)
        setResult(
          result.map((e) => withCode(e instanceof GraphQLError ? e : new GraphQLError(e.message))),
        );
    },
};

// Yoga's own codes for a request it cannot use, said the contract's way.
const REQUEST_CODES = new Set([
  'BAD_REQUEST',
  'OPERATION_RESOLUTION_FAILURE',
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
]);

function withCode(error: GraphQLError): GraphQLError {
  const code = error.extensions.code;
  if (typeof code === 'string' && !REQUEST_CODES.has(code)) return error;
  // originalError is dropped: it would expose the parser's internals.
  const { originalError, ...extensions } = error.extensions as Record<string, unknown>;
  // A body that is not JSON (or no body) is not a GraphQL-over-HTTP request at all: 400 for
  // every client. Yoga marks it like a GraphQL syntax error, which an application/json client
  // gets with 200 (the GraphQL over HTTP spec says SHOULD 400 here, and 200 there).
  if (
    code === 'BAD_REQUEST' &&
    (originalError as { name?: unknown } | undefined)?.name === 'SyntaxError'
  )
    extensions.http = { status: 400 };
  return new GraphQLError(error.message, {
    nodes: error.nodes ?? null,
    source: error.source ?? null,
    positions: error.positions ?? null,
    extensions: { ...extensions, code: 'BAD_USER_INPUT' },
  });
}

/** Domain codes that the GraphQL contract names differently. */
const GRAPHQL_CODE: Partial<Record<ConstatError['code'], string>> = {
  // A finalized constat is a conflict for a mutation (the websocket says 4409).
  GONE: 'CONFLICT',
};

const CONNECTION_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'CONNECTION_ENDED',
  'CONNECT_TIMEOUT',
]);

/** A database (or Redis) that cannot be reached: transient, said as such. */
function isStorageUnavailable(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && CONNECTION_ERRORS.has(code);
}

export function createGraphQL(logger: Logger, limits: GraphQLLimits) {
  const log = logger.child({ component: 'graphql' });
  return createYoga<GraphQLContext>({
    schema: createSchema<GraphQLContext>({ typeDefs: SCHEMA_SDL, resolvers }),
    graphqlEndpoint: '/graphql',
    graphiql: false,
    landingPage: false,
    // Yoga would print every mapped error (a wrong join code…) with its stack to stderr;
    // expected errors are answers, unexpected ones are logged below through pino.
    logging: false,
    plugins: [
      maxTokensPlugin({ n: limits.maxTokens }),
      maxDepthPlugin({ n: limits.maxDepth, flattenFragments: true }),
      maxAliasesPlugin({ n: limits.maxAliases }),
      costLimit(limits.maxCost),
      ...(limits.introspection ? [] : [useDisableIntrospection()]),
      refusedQueriesAreBadInput,
    ],
    maskedErrors: {
      maskError(error, message) {
        const original = error instanceof GraphQLError ? error.originalError : error;
        if (original instanceof ConstatError) {
          return new GraphQLError(original.message, {
            ...(error instanceof GraphQLError ? { nodes: error.nodes, path: error.path } : {}),
            extensions: { code: GRAPHQL_CODE[original.code] ?? original.code, ...original.details },
          });
        }
        if (isStorageUnavailable(original)) {
          log.warn({ err: original }, 'storage unavailable during a GraphQL operation');
          return new GraphQLError('the service is temporarily unavailable; try again', {
            extensions: { code: 'UNAVAILABLE' },
          });
        }
        // No original error, or no path: the request itself was refused (syntax, validation,
        // a variable of the wrong type), not a resolver failing.
        if (error instanceof GraphQLError && (!error.originalError || !error.path))
          return withCode(error);
        log.error({ err: original }, 'unexpected error in a GraphQL operation');
        return new GraphQLError(message, { extensions: { code: 'INTERNAL_SERVER_ERROR' } });
      },
    },
  });
}
