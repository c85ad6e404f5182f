-- Payout bookkeeping beyond the first schema: verified provider webhooks (de-duplicated by the
-- provider's event id), daily reconciliation runs, and what a payout needs for review.

CREATE TABLE webhook_events (
  provider     text NOT NULL,
  event_id     text NOT NULL,
  our_key      text,
  status       text,
  received_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (provider, event_id)
);

CREATE TABLE reconciliation_runs (
  provider     text NOT NULL,
  day          date NOT NULL,
  started_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  mismatches   integer,
  PRIMARY KEY (provider, day)
);

ALTER TABLE payouts
  ADD CONSTRAINT payouts_status_check
    CHECK (status IN ('PENDING','UNKNOWN','PROCESSING','SETTLED','FAILED','RETURNED')),
  ADD COLUMN user_id text NOT NULL DEFAULT '',
  ADD COLUMN provider_status text,
  ADD COLUMN bank_code text,
  ADD COLUMN returned_at timestamptz;

-- One payout in flight per trade; a new one (new key) only after a confirmed failure.
CREATE UNIQUE INDEX payouts_one_live_per_trade ON payouts (trade_id) WHERE status NOT IN ('FAILED');
CREATE INDEX payouts_due ON payouts (next_check_at) WHERE status IN ('PENDING','UNKNOWN','PROCESSING');
CREATE INDEX payouts_user_day ON payouts (user_id, created_at);

-- The DICT lookup the holder check passed, sent with the transfer (the provider pays by bank data).
ALTER TABLE payouts ADD COLUMN key_owner jsonb;
