import type { Principal } from '../auth.js';
import type { SessionService } from '../../sync/session-service.js';
import type { Metrics } from '../metrics.js';
import type { SigningService } from '../../sync/signing-service.js';
import type { CompanyRegistry } from '../../integrations/company-registry.js';

export interface GraphQLServices {
  sessions: SessionService;
  signing: SigningService;
  registry: CompanyRegistry;
  metrics: Metrics;
}

/** Built per request, after the bearer token was verified. */
export interface GraphQLContext {
  principal: Principal;
  services: GraphQLServices;
  /** ws:// or wss:// base URL devices use for the sync endpoint. */
  publicWsBase: string;
}
