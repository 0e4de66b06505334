/**
 * Change notifications for subscriptions. With Redis they cross instances (a change raised on
 * one instance reaches a subscriber on another); otherwise they stay in process. Payloads carry
 * only the id: every subscriber re-reads the object with its own permissions.
 *
 * The Redis event target is ours rather than @graphql-yoga/redis-event-target: that one leaves
 * the promises of SUBSCRIBE/UNSUBSCRIBE/PUBLISH unhandled (a Redis hiccup, or a stop while
 * streams are open, became an unhandled rejection), and it cannot prefix channel names.
 */
import { createPubSub } from 'graphql-yoga';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

export type ChangePubSub = ReturnType<typeof createChangePubSub>;

export interface RedisPubSubOptions {
  publish: Redis;
  subscribe: Redis;
  /** Prefix of the channel names (REDIS_KEY_PREFIX). */
  prefix: string;
  logger: Logger;
}

type Topics = {
  sessionChanged: [id: string, payload: { id: string }];
  constatChanged: [id: string, payload: { id: string }];
};
type ChangeEventTarget = NonNullable<
  NonNullable<Parameters<typeof createPubSub<Topics>>[0]>['eventTarget']
>;

export function createChangePubSub(redis?: RedisPubSubOptions) {
  return createPubSub<Topics>(redis ? { eventTarget: redisEventTarget(redis) } : {});
}

type Listener = (event: CustomEvent) => void;

function redisEventTarget({
  publish,
  subscribe,
  prefix,
  logger,
}: RedisPubSubOptions): ChangeEventTarget {
  const log = logger.child({ component: 'subscriptions' });
  const listeners = new Map<string, Set<Listener>>();
  const failed = (what: string) => (err: unknown) =>
    log.warn({ err: (err as Error).message }, `redis ${what} failed`);
  subscribe.on('message', (channel: string, message: string) => {
    if (!channel.startsWith(prefix)) return;
    const topic = channel.slice(prefix.length);
    const callbacks = listeners.get(topic);
    if (!callbacks) return;
    let detail: unknown;
    try {
      detail = message === '' ? null : JSON.parse(message);
    } catch {
      log.warn({ channel }, 'ignored an undecodable notification');
      return;
    }
    for (const callback of callbacks) callback(new CustomEvent(topic, { detail }));
  });
  const callbackOf = (listener: unknown): Listener | undefined =>
    listener == null
      ? undefined
      : typeof listener === 'function'
        ? (listener as Listener)
        : (listener as { handleEvent: Listener }).handleEvent;
  return {
    addEventListener(topic: string, listener: unknown) {
      const callback = callbackOf(listener);
      if (!callback) return;
      let set = listeners.get(topic);
      if (!set) {
        listeners.set(topic, (set = new Set()));
        subscribe.subscribe(prefix + topic).catch(failed('subscribe'));
      }
      set.add(callback);
    },
    removeEventListener(topic: string, listener: unknown) {
      const callback = callbackOf(listener);
      const set = listeners.get(topic);
      if (!callback || !set) return;
      set.delete(callback);
      if (set.size > 0) return;
      listeners.delete(topic);
      if (subscribe.status === 'ready')
        subscribe.unsubscribe(prefix + topic).catch(failed('unsubscribe'));
    },
    dispatchEvent(event: CustomEvent) {
      publish
        .publish(
          prefix + event.type,
          event.detail === undefined ? '' : JSON.stringify(event.detail),
        )
        .catch(failed('publish'));
      return true;
    },
  } as unknown as ChangeEventTarget;
}
