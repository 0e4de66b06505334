/**
 * GraphQL Yoga, built once per server. Errors are mapped in one place: a ConstatError becomes
 * a GraphQL error whose `extensions.code` is the contract's code; anything else is masked.
 */
import { readFileSync } from 'node:fs';
import { createSchema, createYoga } from 'graphql-yoga';
import { GraphQLError } from 'graphql';
import { ConstatError } from '../../sync/errors.js';
import { resolvers } from './resolvers.js';
import type { GraphQLContext } from './context.js';
import type { Logger } from 'pino';

export const SCHEMA_SDL = readFileSync(new URL('./schema.graphql', import.meta.url), 'utf8');

export type ConstatYoga = ReturnType<typeof createGraphQL>;

export function createGraphQL(logger: Logger) {
  const log = logger.child({ component: 'graphql' });
  return createYoga<GraphQLContext>({
    // Yoga would print every mapped error (a wrong join code…) with its stack to stderr;
    // expected errors are answers, unexpected ones are logged below through pino.
    logging: false,
    schema: createSchema<GraphQLContext>({ typeDefs: SCHEMA_SDL, resolvers }),
    graphqlEndpoint: '/graphql',
    graphiql: false,
    landingPage: false,
    maskedErrors: {
      maskError(error, message) {
        const original = error instanceof GraphQLError ? error.originalError : error;
        if (original instanceof ConstatError) {
          return new GraphQLError(original.message, {
            ...(error instanceof GraphQLError ? { nodes: error.nodes, path: error.path } : {}),
            extensions: { code: original.code, ...original.details },
          });
        }
        if (error instanceof GraphQLError && !error.originalError) return error;
        log.error({ err: original }, 'unexpected error in a GraphQL operation');
        return new GraphQLError(message, { extensions: { code: 'INTERNAL_SERVER_ERROR' } });
      },
    },
  });
}
