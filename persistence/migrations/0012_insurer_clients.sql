-- Insurers calling the REST API (docs/integration.md): OAuth 2.0 client credentials with a
-- signed JWT client assertion (RFC 7523, `private_key_jwt`). The company keeps the private key;
-- core keeps the public one. Each client also has the Standard Webhooks secrets its requests'
-- bodies are signed with.

create table insurer_clients (
  client_id text primary key,
  company text not null references companies (uid),
  -- The public JWK the client's assertions must verify against (EC P-256, Ed25519 or RSA).
  public_jwk jsonb not null,
  -- `whsec_…` secrets accepted on request bodies, newest first, with when each stops counting.
  body_secrets jsonb not null default '[]',
  created_at timestamptz not null default now(),
  revoked_at timestamptz
);
create index insurer_clients_company on insurer_clients (company);

-- Assertion ids (`jti`) already used, until they expire: an intercepted assertion is worth
-- one token at most. The primary key is the replay check (a separate lookup would race).
create table insurer_assertions (
  client_id text not null references insurer_clients (client_id),
  jti text not null,
  expires_at timestamptz not null,
  primary key (client_id, jti)
);
create index insurer_assertions_expiry on insurer_assertions (expires_at);
