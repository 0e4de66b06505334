/**
 * `POST /v1/dev/token`: development tokens for the reference app, so a person can try the
 * product in a browser without an identity provider. Mounted only in development mode
 * (`config.devMode`: `CONSTAT_DEV`, which `npm start` sets; refused with NODE_ENV=production), and answered only to
 * loopback clients: anyone who can reach a development server from elsewhere must still not
 * be able to become any user.
 *
 * Body: `{ "user": "driver-a", "device": "browser-1f3a…", "name"?: "Amina" }`
 * Answer: `{ "token": "<jwt>", "expiresAt": "<ISO 8601>" }`
 */
import { Hono } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import { mintDevelopmentToken } from './auth.js';
import { ConstatError } from '../constat/errors.js';

const ID = /^[A-Za-z0-9._:@-]{1,100}$/;
const TOKEN_HOURS = 12;

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || /^127\.\d+\.\d+\.\d+$/.test(address) || /^::ffff:127\./.test(address);
}

export function createDevTokenRoutes(secret: string): Hono {
  const routes = new Hono();
  routes.post('/v1/dev/token', async (c) => {
    let address: string | undefined;
    try {
      address = getConnInfo(c).remote.address;
    } catch {
      address = undefined; // not a Node socket (an in-memory request): not loopback
    }
    if (!isLoopback(address)) {
      throw new ConstatError('FORBIDDEN', 'development tokens are handed out on loopback only');
    }
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      throw new ConstatError('BAD_USER_INPUT', 'expected a JSON body { user, device, name? }');
    }
    const { user, device, name } = (body ?? {}) as Record<string, unknown>;
    if (typeof user !== 'string' || !ID.test(user)) {
      throw new ConstatError('BAD_USER_INPUT', '"user": 1-100 of A-Z a-z 0-9 . _ : @ -');
    }
    if (typeof device !== 'string' || !ID.test(device)) {
      throw new ConstatError('BAD_USER_INPUT', '"device": 1-100 of A-Z a-z 0-9 . _ : @ -');
    }
    if (name !== undefined && (typeof name !== 'string' || name.length > 100)) {
      throw new ConstatError('BAD_USER_INPUT', '"name": text up to 100 characters');
    }
    const token = await mintDevelopmentToken({
      secret,
      userId: user,
      deviceId: device,
      ...(name ? { name } : {}),
      expiresIn: `${TOKEN_HOURS}h`,
    });
    const expiresAt = new Date(Date.now() + TOKEN_HOURS * 3600_000).toISOString();
    return c.json({ token, expiresAt });
  });
  return routes;
}
