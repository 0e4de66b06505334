/**
 * Who the driver is. The app needs a bearer JWT with `sub` (user) and `did` (this device).
 * A real deployment plugs its identity provider in by defining `window.constatAuth` before the
 * app starts (docs/app.md); a development server hands out tokens on loopback instead.
 */
export interface Identity {
  token: string;
  userId: string;
  name: string;
}

/** The hook an identity provider implements. */
export interface AuthProvider {
  /** Signs the driver in (may redirect away and back) and returns the identity. */
  signIn(deviceId: string, name: string): Promise<Identity>;
  /** A token still valid for requests, renewed by the provider when needed. */
  current(): Promise<Identity | undefined>;
  signOut(): Promise<void>;
}

declare global {
  interface Window {
    constatAuth?: AuthProvider;
  }
}

const STORE = 'constat.identity';
const DEVICE = 'constat.device';

/** This browser's device id: random, made once, kept. */
export function deviceId(): string {
  let id = localStorage.getItem(DEVICE);
  if (!id) {
    id = `web-${crypto.randomUUID()}`;
    localStorage.setItem(DEVICE, id);
  }
  return id;
}

/** Development tokens from the server (`POST /v1/dev/token`, loopback, development mode). */
export const developmentAuth: AuthProvider = {
  async signIn(device, name) {
    const userId = `dev-${slug(name)}`;
    const res = await fetch('/v1/dev/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: userId, device, name }),
    });
    const body = (await res.json().catch(() => ({}))) as {
      token?: string;
      expiresAt?: string;
      error?: { message?: string };
    };
    if (!res.ok || !body.token) {
      throw new Error(
        res.status === 404
          ? 'this server is not in development mode: sign in through your identity provider'
          : (body.error?.message ?? `sign-in failed (HTTP ${res.status})`),
      );
    }
    const identity = { token: body.token, userId, name, expiresAt: body.expiresAt };
    localStorage.setItem(STORE, JSON.stringify(identity));
    return identity;
  },
  async current() {
    const raw = localStorage.getItem(STORE);
    if (!raw) return undefined;
    const stored = JSON.parse(raw) as Identity & { expiresAt?: string };
    if (stored.expiresAt && Date.parse(stored.expiresAt) < Date.now() + 60_000) return undefined;
    return stored;
  },
  async signOut() {
    localStorage.removeItem(STORE);
  },
};

export function authProvider(): AuthProvider {
  return window.constatAuth ?? developmentAuth;
}

function slug(name: string): string {
  const s = name
    .normalize('NFKD')
    .replace(/[^A-Za-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .toLowerCase()
    .slice(0, 40);
  return s || 'driver';
}
