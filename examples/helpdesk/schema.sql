-- The application's own table, created by the application (tidesync creates only its own schema).
create table if not exists tickets (
  id serial primary key,
  subject text not null,
  -- draft tickets stay in the application; the others are pushed to the help desk.
  status text not null default 'open' check (status in ('draft', 'open', 'pending', 'closed')),
  priority int check (priority between 1 and 4),
  requester_email text,
  -- The help desk's id, written back by the export job after a create.
  helpdesk_id text,
  updated_at timestamptz not null default now()
);
