-- Delivery per company (docs/integration.md): core's events reach an insurer on Kafka (its
-- topic, as before), on its HTTPS webhook, or both. The outbox stays the one source: every row
-- for a company topic is routed here, in the transaction that writes it, so the choice in force
-- when an event is committed is the one that applies, whichever code path wrote the row.

alter table companies
  add column delivery text not null default 'kafka' check (delivery in ('kafka', 'webhook', 'both')),
  add column webhook_url text check (webhook_url ~ '^https://'),
  -- Standard Webhooks secrets (`whsec_…`), newest first, each with the time it stops being
  -- used: during a rotation both sign, so the receiver can switch without losing a delivery.
  add column webhook_secrets jsonb not null default '[]',
  -- Set on 410 Gone, after failing for WEBHOOK_DISABLE_AFTER_MS, or by an operator; nothing is
  -- attempted while it is set (deliveries wait) until an operator enables the endpoint again.
  add column webhook_disabled_at timestamptz,
  add column webhook_disabled_reason text,
  -- Start of the current run of failures (null after a success).
  add column webhook_failing_since timestamptz;

-- false: the row is for the webhook channel only, the Kafka relay leaves it alone.
alter table outbox add column kafka boolean not null default true;
drop index outbox_pending;
create index outbox_pending on outbox (next_attempt_at) where sent_at is null and kafka;

-- One row per event and company on the webhook channel; the payload stays in the outbox row.
create table webhook_deliveries (
  -- Creation order: the order of delivery per (company, ordering_key).
  id bigserial primary key,
  outbox_id uuid not null unique references outbox (id),
  company text not null references companies (uid),
  event_id text not null,
  -- The constat: a company receives the events of one constat in order.
  ordering_key text not null,
  status text not null default 'pending' check (status in ('pending', 'delivered', 'dead')),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  -- A sender on some instance holds the row until then (a crashed sender's lease runs out).
  leased_until timestamptz,
  last_status integer,
  last_error text,
  created_at timestamptz not null default now(),
  delivered_at timestamptz,
  dead_at timestamptz
);
create index webhook_deliveries_due on webhook_deliveries (company, id) where status = 'pending';
create index webhook_deliveries_dead on webhook_deliveries (company, dead_at) where status = 'dead';

-- Routing, in the writer's transaction. A trigger rather than code in each writer: the
-- finalization and the report both write outbox rows, and neither must be able to forget.
create function route_outbox_row() returns trigger language plpgsql as $$
declare
  mode text;
begin
  select delivery into mode from companies where uid = new.topic;
  if mode is null then
    return new; -- `constats`, `ai-results`: not a company, Kafka only
  end if;
  if mode in ('webhook', 'both') then
    insert into webhook_deliveries (outbox_id, company, event_id, ordering_key)
    values (new.id, new.topic, coalesce(new.payload ->> 'id', new.id::text), new.message_key);
  end if;
  if mode = 'webhook' then
    update outbox set kafka = false where id = new.id;
  end if;
  return new;
end
$$;
create trigger outbox_route after insert on outbox for each row execute function route_outbox_row();
