import type { Logger } from 'pino';
import type { Principal } from '../auth.js';
import type { SessionService } from '../../sync/session-service.js';
import type { Metrics } from '../metrics.js';
import type { SigningService } from '../../sync/signing-service.js';
import type { CompanyRegistry } from '../../integrations/company-registry.js';
import type { ConstatsRepository, Viewer } from '../../persistence/constats-repository.js';
import type { TimelineRepository } from '../../persistence/timeline-repository.js';
import type { CursorCodec } from './cursor.js';
import type { ChangePubSub } from './pubsub.js';
import type { Loaders } from './loaders.js';

export interface GraphQLServices {
  sessions: SessionService;
  signing: SigningService;
  registry: CompanyRegistry;
  metrics: Metrics;
  constats: ConstatsRepository;
  timeline: TimelineRepository;
  cursors: CursorCodec;
  pubsub: ChangePubSub;
  maxPageSize: number;
  /** Changes a subscriber may fall behind before it is cut off. */
  subscriptionBuffer: number;
  logger: Logger;
}

/** The streamed response of a subscription, which the server may end early. */
export interface SubscriberConnection {
  /** Ends the stream with a last error event (`code`, `message`), then the connection. */
  cutOff(code: string, message: string): void;
}

/** Built per request, after the bearer token was verified. */
export interface GraphQLContext {
  principal: Principal;
  /** What the caller may see: constats they are a party of, and their insurers' (roles). */
  viewer: Viewer;
  services: GraphQLServices;
  loaders: Loaders;
  /** Set once the response is a stream (a subscription over SSE). */
  subscriber?: SubscriberConnection;
  /** ws:// or wss:// base URL devices use for the sync endpoint. */
  publicWsBase: string;
}

/** `insurer:<uid>` roles give read access to the constats that company insures. */
export function viewerOf(principal: Principal): Viewer {
  const insurers = principal.roles
    .filter((r) => r.startsWith('insurer:'))
    .map((r) => r.slice('insurer:'.length));
  return { userId: principal.userId, insurers };
}
