-- The CloudEvents content mode of the events core sends on a company's topic: structured (the
-- envelope as the message value) unless the company's consumer requires binary (attributes in
-- ce_* headers, the data as the value). Set by an operator: see docs/events.md.
alter table companies
  add column event_mode text not null default 'structured'
    check (event_mode in ('structured', 'binary'));
