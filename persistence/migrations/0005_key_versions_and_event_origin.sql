-- Device keys are versioned, and events from insurers are kept per topic in the order core
-- received them.

-- Every key a device ever registered, never updated except to mark it replaced, never deleted:
-- a finalized constat stays verifiable with the key that signed it. `key_id` is the RFC 7638
-- JWK thumbprint of the key ({"crv":"Ed25519","kty":"OKP","x":<base64url key>}), so anyone
-- holding the key can recompute it.
create table device_keys (
  user_id text not null,
  device_id text not null,
  version integer not null check (version >= 1),
  key_id text not null,
  public_key bytea not null check (length(public_key) = 32),
  registered_at timestamptz not null default now(),
  replaced_at timestamptz,
  primary key (user_id, device_id, version)
);
create index device_keys_key_id on device_keys (key_id);

insert into device_keys (user_id, device_id, version, key_id, public_key, registered_at)
select user_id, device_id, 1,
  rtrim(translate(encode(sha256(convert_to(
    '{"crv":"Ed25519","kty":"OKP","x":"'
      || rtrim(translate(encode(public_key, 'base64'), '+/', '-_'), '=') || '"}',
    'UTF8')), 'base64'), '+/', '-_'), '='),
  public_key, updated_at
from devices;

-- The current key of each device (the row of `device_keys` with this version).
alter table devices add column key_version integer not null default 1;

-- An event id is unique per topic only: one company must not be able to take another's ids.
alter table constat_events drop constraint constat_events_pkey;
alter table constat_events add primary key (topic, event_id);
-- The order core received events in: a claim's status follows it, not the sender's `time`.
alter table constat_events add column seq bigint generated always as identity;
create index constat_events_received on constat_events (constat_id, seq);
