/**
 * Operator commands on the company registry and the webhook deliveries:
 * `constat companies …` and `constat deliveries …` (usage below). They change the database
 * only; running servers pick the changes up without a restart (endpoints and secrets at the next
 * attempt, delivery modes at the next event, new or disabled companies at COMPANY_REFRESH_MS).
 */
import { createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type postgres from 'postgres';
import { createCompaniesRepository } from '../persistence/companies-repository.js';
import { createInsurerClientsRepository } from '../persistence/insurer-clients-repository.js';
import { createWebhookDeliveriesRepository } from '../persistence/webhook-deliveries-repository.js';
import { COMPANIES } from '../integrations/companies.js';
import { DELIVERY_MODES, type DeliveryMode } from '../integrations/delivery-channel.js';
import { newWebhookSecret, rotateSecrets } from '../integrations/webhook-signature.js';

export const COMPANIES_USAGE = `usage: constat companies <command>

  list                                  every company, its delivery mode and endpoint state
  add <uid> --name N [--kind K]         a new insurer (uid: a-z 0-9 -, also its Kafka topic)
  set-delivery <uid> kafka|webhook|both [--url https://…]
                                        how core's events reach it; a new URL is enabled at once
                                        and, without a secret yet, one is made and printed
  rotate-secret <uid> [--overlap 24h]   a new webhook secret; the old one keeps signing meanwhile
  enable-webhook <uid>                  re-enable an endpoint disabled by 410 or failures
  credentials <uid> [--public-key FILE] an API client (OAuth client credentials, private_key_jwt):
                                        FILE is the insurer's public key (PEM or JWK); without it a
                                        P-256 key pair is made and the private JWK printed once
  revoke-client <clientId>              the client's tokens stop working at once
  disable <uid> | enable <uid>          take a company out of (or back into) the registry
`;

export const DELIVERIES_USAGE = `usage: constat deliveries <command>

  failing                               endpoints failing or disabled, with waiting and dead counts
  dead [--company UID] [--limit N]      dead-lettered deliveries
  replay <deliveryId> | --company UID   dead-lettered deliveries back on a fresh retry schedule
`;

export class OperatorError extends Error {}

type Out = (line: string) => void;

function duration(text: string): number {
  const match = /^(\d{1,6})(s|m|h|d)$/.exec(text);
  if (!match) throw new OperatorError(`"${text}" is not a duration (30m, 24h, 7d…)`);
  return Number(match[1]) * { s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 }[match[2] as 's']!;
}

function table(rows: Array<Record<string, unknown>>, out: Out): void {
  if (rows.length === 0) return out('(none)');
  const keys = Object.keys(rows[0]!);
  const text = (v: unknown) =>
    v === null || v === undefined ? '-' : v instanceof Date ? v.toISOString() : String(v);
  const widths = keys.map((k) => Math.max(k.length, ...rows.map((r) => text(r[k]).length)));
  out(keys.map((k, i) => k.padEnd(widths[i]!)).join('  '));
  for (const r of rows) out(keys.map((k, i) => text(r[k]).padEnd(widths[i]!)).join('  '));
}

/** The algorithm a client's assertions are signed with, from its key type. */
function publicJwkOf(key: KeyObject): Record<string, unknown> {
  const jwk = key.export({ format: 'jwk' }) as Record<string, unknown>;
  const alg =
    key.asymmetricKeyType === 'ec' && jwk.crv === 'P-256'
      ? 'ES256'
      : key.asymmetricKeyType === 'ed25519'
        ? 'EdDSA'
        : key.asymmetricKeyType === 'rsa'
          ? 'RS256'
          : undefined;
  if (!alg) throw new OperatorError('use an EC P-256, Ed25519 or RSA key');
  return { ...jwk, alg, use: 'sig' };
}

function readPublicKey(file: string): KeyObject {
  const text = readFileSync(file, 'utf8');
  try {
    return text.trim().startsWith('{')
      ? createPublicKey({
          key: JSON.parse(text) as import('node:crypto').JsonWebKey,
          format: 'jwk',
        })
      : createPublicKey(text);
  } catch (err) {
    throw new OperatorError(`${file}: not a public key (${(err as Error).message})`);
  }
}

export async function runCompanies(argv: string[], sql: postgres.Sql, out: Out): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      kind: { type: 'string', default: 'private' },
      url: { type: 'string' },
      overlap: { type: 'string', default: '24h' },
      'public-key': { type: 'string' },
    },
  });
  const [command, uid, arg] = positionals;
  const companies = createCompaniesRepository(sql);
  // The server seeds the registry at start; a command run before any server did must see it too.
  await companies.seed(COMPANIES);
  const need = (what: string | undefined, name: string) => {
    if (!what) throw new OperatorError(`companies ${command} needs ${name}`);
    return what;
  };
  const found = (ok: boolean) => {
    if (!ok) throw new OperatorError(`no company "${uid}"`);
  };
  switch (command) {
    case 'list':
      return table(
        (await companies.list()).map((c) => ({
          uid: c.uid,
          active: c.active,
          delivery: c.delivery,
          webhook: c.webhookUrl,
          state: c.webhookDisabledAt
            ? `disabled: ${c.webhookDisabledReason}`
            : c.webhookFailingSince
              ? `failing since ${c.webhookFailingSince.toISOString()}`
              : 'ok',
          name: c.name,
        })),
        out,
      );
    case 'add': {
      need(uid, 'a uid');
      if (!/^[a-z0-9][a-z0-9-]{0,48}$/.test(uid!)) throw new OperatorError('uid: a-z 0-9 - (≤ 49)');
      if (
        !(await companies.add({ uid: uid!, name: need(values.name, '--name'), kind: values.kind! }))
      )
        throw new OperatorError(`"${uid}" exists already`);
      return out(`added ${uid}`);
    }
    case 'set-delivery': {
      need(uid, 'a uid');
      const mode = need(arg, 'kafka, webhook or both') as DeliveryMode;
      if (!DELIVERY_MODES.includes(mode))
        throw new OperatorError(`"${mode}": kafka, webhook or both`);
      if (values.url !== undefined) {
        let url: URL;
        try {
          url = new URL(values.url);
        } catch {
          throw new OperatorError(`--url: not a URL`);
        }
        if (url.protocol !== 'https:') throw new OperatorError('--url must be https');
      }
      const secrets = await companies.webhookSecrets(uid!);
      if (secrets === null) found(false);
      if (mode !== 'kafka') {
        const current = (await companies.list()).find((c) => c.uid === uid);
        if (!values.url && !current?.webhookUrl)
          throw new OperatorError(`${mode} delivery needs --url (the company has no endpoint yet)`);
      }
      found(await companies.setDelivery(uid!, mode, values.url));
      out(`${uid}: delivery ${mode}${values.url ? ` to ${values.url}` : ''}`);
      if (mode !== 'kafka' && secrets!.length === 0) {
        const secret = newWebhookSecret();
        await companies.setWebhookSecrets(uid!, [{ secret, expiresAt: null }]);
        out(`webhook secret (give it to the insurer; shown once): ${secret}`);
      }
      return;
    }
    case 'rotate-secret': {
      const secrets = await companies.webhookSecrets(need(uid, 'a uid'));
      if (secrets === null) return found(false);
      const rotated = rotateSecrets(secrets, duration(values.overlap!));
      await companies.setWebhookSecrets(uid!, rotated);
      out(`new webhook secret (shown once): ${rotated[0]!.secret}`);
      out(
        `older secrets keep signing until ${new Date(Date.now() + duration(values.overlap!)).toISOString()}`,
      );
      return;
    }
    case 'enable-webhook':
      found(await companies.enableWebhook(need(uid, 'a uid')));
      return out(`${uid}: webhook endpoint enabled`);
    case 'disable':
    case 'enable':
      found(await companies.setActive(need(uid, 'a uid'), command === 'enable'));
      return out(`${uid}: ${command}d`);
    case 'credentials': {
      need(uid, 'a uid');
      if ((await companies.webhookSecrets(uid!)) === null) found(false);
      let publicKey: KeyObject;
      let privateJwk: Record<string, unknown> | undefined;
      if (values['public-key']) {
        publicKey = readPublicKey(values['public-key']);
      } else {
        const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
        publicKey = pair.publicKey;
        privateJwk = { ...(pair.privateKey.export({ format: 'jwk' }) as object), alg: 'ES256' };
      }
      const clientId = `${uid}-${randomBytes(6).toString('hex')}`;
      const bodySecret = newWebhookSecret();
      await createInsurerClientsRepository(sql).create({
        clientId,
        company: uid!,
        publicJwk: publicJwkOf(publicKey),
        bodySecrets: [{ secret: bodySecret, expiresAt: null }],
      });
      out(`client_id: ${clientId}`);
      out(`body signing secret (shown once): ${bodySecret}`);
      if (privateJwk)
        out(
          `private key (JWK, shown once; keep it with the insurer): ${JSON.stringify(privateJwk)}`,
        );
      return;
    }
    case 'revoke-client':
      if (!(await createInsurerClientsRepository(sql).revoke(need(uid, 'a client id'))))
        throw new OperatorError(`no active client "${uid}"`);
      return out(`${uid}: revoked`);
    default:
      throw new OperatorError(
        command ? `companies: unknown command "${command}"` : COMPANIES_USAGE,
      );
  }
}

export async function runDeliveries(argv: string[], sql: postgres.Sql, out: Out): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { company: { type: 'string' }, limit: { type: 'string', default: '100' } },
  });
  const deliveries = createWebhookDeliveriesRepository(sql);
  const [command, id] = positionals;
  switch (command) {
    case 'failing':
      return table(
        (await deliveries.failing()).map((f) => ({
          company: f.company,
          url: f.url,
          failingSince: f.failingSince,
          disabled: f.disabledAt ? `${f.disabledAt.toISOString()} (${f.disabledReason})` : null,
          pending: f.pending,
          dead: f.dead,
        })),
        out,
      );
    case 'dead': {
      const limit = Number(values.limit);
      if (!Number.isInteger(limit) || limit < 1)
        throw new OperatorError('--limit: a positive integer');
      return table(
        (await deliveries.dead(values.company, limit)).map((d) => ({
          id: d.id,
          company: d.company,
          eventId: d.eventId,
          constat: d.orderingKey,
          attempts: d.attempts,
          lastStatus: d.lastStatus,
          lastError: d.lastError,
          deadAt: d.deadAt,
        })),
        out,
      );
    }
    case 'replay': {
      if (!id && !values.company)
        throw new OperatorError('replay needs a delivery id or --company');
      if (id && !/^\d{1,18}$/.test(id)) throw new OperatorError(`"${id}" is not a delivery id`);
      const n = await deliveries.replay(id ? { id } : { company: values.company! });
      return out(`${n} dead-lettered deliver${n === 1 ? 'y' : 'ies'} queued again`);
    }
    default:
      throw new OperatorError(
        command ? `deliveries: unknown command "${command}"` : DELIVERIES_USAGE,
      );
  }
}
