/**
 * Change notifications for subscriptions. With Redis they cross instances (a change raised on
 * one instance reaches a subscriber on another); otherwise they stay in process. Payloads carry
 * only the id: every subscriber re-reads the object with its own permissions.
 */
import { createPubSub } from 'graphql-yoga';
import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import type { Redis } from 'ioredis';

export type ChangePubSub = ReturnType<typeof createChangePubSub>;

export function createChangePubSub(redis?: { publish: Redis; subscribe: Redis }) {
  return createPubSub<{
    sessionChanged: [id: string, payload: { id: string }];
    constatChanged: [id: string, payload: { id: string }];
  }>(
    redis
      ? {
          eventTarget: createRedisEventTarget({
            publishClient: redis.publish,
            subscribeClient: redis.subscribe,
          }),
        }
      : {},
  );
}
