-- Ponte's schema of record. Crypto amounts: numeric(78,0) base units. BRL: bigint centavos.
-- Times: timestamptz from now() (the database is the one clock).

CREATE TABLE quotes (
  id                    text PRIMARY KEY,
  user_id               text NOT NULL,
  network               text NOT NULL,
  symbol                text NOT NULL,
  decimals              integer NOT NULL,
  crypto_amount         numeric(78,0) NOT NULL CHECK (crypto_amount > 0),
  fiat_amount_centavos  bigint NOT NULL CHECK (fiat_amount_centavos >= 0),
  price                 numeric(60,18) NOT NULL CHECK (price > 0),
  spread_bps            integer NOT NULL,
  network_fee_bps       integer NOT NULL,
  spread_centavos       bigint NOT NULL,
  network_fee_centavos  bigint NOT NULL,
  expires_at            timestamptz NOT NULL,
  created_at            timestamptz NOT NULL DEFAULT now(),
  used_by_trade_id      text UNIQUE
);
CREATE INDEX quotes_user_created ON quotes (user_id, created_at);

CREATE TABLE instant_trades (
  id                    text PRIMARY KEY,
  user_id               text NOT NULL,
  quote_id              text NOT NULL UNIQUE REFERENCES quotes (id),
  status                text NOT NULL CHECK (status IN ('PENDING','DEPOSIT_DETECTED','PAYMENT_CONFIRMED','UNDERPAID',
                          'PAYOUT_PENDING','COMPLETED','REFUND_PENDING','REFUNDED','EXPIRED','CANCELLED','MANUAL_REVIEW')),
  version               bigint NOT NULL DEFAULT 1,
  source                text NOT NULL DEFAULT 'deposit' CHECK (source IN ('deposit','custodial')),
  network               text NOT NULL,
  symbol                text NOT NULL,
  decimals              integer NOT NULL,
  contract              text NOT NULL DEFAULT '',
  crypto_amount         numeric(78,0) NOT NULL,
  fiat_amount_centavos  bigint NOT NULL,
  price                 numeric(60,18) NOT NULL,
  spread_bps            integer NOT NULL,
  network_fee_bps       integer NOT NULL,
  deposit_address       text NOT NULL,
  refund_address        text,
  received_amount       numeric(78,0) NOT NULL DEFAULT 0,
  confirmed_amount      numeric(78,0) NOT NULL DEFAULT 0,
  expires_at            timestamptz NOT NULL,
  monitoring_until      timestamptz NOT NULL,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  UNIQUE (network, deposit_address)
);
CREATE INDEX instant_trades_user_page ON instant_trades (user_id, id DESC);
CREATE INDEX instant_trades_expiring ON instant_trades (expires_at) WHERE status = 'PENDING';
CREATE INDEX instant_trades_status ON instant_trades (status);

-- Append-only audit: one row per transition, written in the transition's transaction.
CREATE TABLE instant_trade_history (
  id           bigserial PRIMARY KEY,
  trade_id     text NOT NULL REFERENCES instant_trades (id),
  version      bigint NOT NULL,
  from_status  text,
  to_status    text NOT NULL,
  actor        text NOT NULL,
  reason       text NOT NULL DEFAULT '',
  data         jsonb NOT NULL DEFAULT '{}',
  created_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (trade_id, version)
);

CREATE FUNCTION ponte_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER instant_trade_history_append_only BEFORE UPDATE OR DELETE ON instant_trade_history
  FOR EACH ROW EXECUTE FUNCTION ponte_append_only();

-- Addresses an agent derived in advance; a trade takes one in its creating transaction.
CREATE TABLE deposit_addresses (
  network           text NOT NULL,
  address           text NOT NULL,
  derivation_index  bigint NOT NULL,
  derivation_path   text NOT NULL,
  script            text NOT NULL DEFAULT '',
  status            text NOT NULL DEFAULT 'AVAILABLE' CHECK (status IN ('AVAILABLE','ASSIGNED')),
  trade_id          text REFERENCES instant_trades (id),
  created_at        timestamptz NOT NULL DEFAULT now(),
  assigned_at       timestamptz,
  PRIMARY KEY (network, address),
  UNIQUE (network, derivation_index)
);
CREATE INDEX deposit_addresses_available ON deposit_addresses (network, derivation_index) WHERE status = 'AVAILABLE';

CREATE TABLE deposits (
  id             bigserial PRIMARY KEY,
  network        text NOT NULL,
  tx_ref         text NOT NULL,
  tx_hash        text NOT NULL,
  address        text NOT NULL,
  contract       text NOT NULL DEFAULT '',
  amount         numeric(78,0) NOT NULL CHECK (amount >= 0),
  trade_id       text REFERENCES instant_trades (id),
  status         text NOT NULL CHECK (status IN ('SEEN','CONFIRMED','REORGED','FAILED')),
  block_height   bigint,
  block_hash     text,
  confirmations  integer NOT NULL DEFAULT 0,
  rbf_signaled   boolean NOT NULL DEFAULT false,
  late           boolean NOT NULL DEFAULT false,
  from_address   text,
  first_seen_at  timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT deposits_network_tx_ref_key UNIQUE (network, tx_ref)
);
CREATE INDEX deposits_trade ON deposits (trade_id);
CREATE INDEX deposits_unfinal ON deposits (network, block_height) WHERE status = 'SEEN';

-- The desk's own wallets per network: addresses, derivation paths and a key reference
-- (where the agent finds the key, e.g. a Vault path) — never a private key.
CREATE TABLE system_wallets (
  id               bigserial PRIMARY KEY,
  network          text NOT NULL,
  kind             text NOT NULL CHECK (kind IN ('hot','cold')),
  address          text NOT NULL,
  derivation_path  text,
  key_ref          text,
  ceiling          numeric(78,0),
  created_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (network, kind)
);

CREATE TABLE system_addresses (
  id                bigserial PRIMARY KEY,
  wallet_id         bigint REFERENCES system_wallets (id),
  network           text NOT NULL,
  address           text NOT NULL,
  purpose           text NOT NULL,
  derivation_index  bigint,
  derivation_path   text,
  key_ref           text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  UNIQUE (network, address)
);

-- Transfer orders (sweeps, refunds, custodial sells, rebalances, gas top-ups) and their attempts.
CREATE TABLE transfer_transactions (
  id               text PRIMARY KEY,
  network          text NOT NULL,
  kind             text NOT NULL CHECK (kind IN ('SWEEP','REFUND','CUSTODIAL_SELL','REBALANCE','GAS_TOPUP')),
  trade_id         text REFERENCES instant_trades (id),
  status           text NOT NULL CHECK (status IN ('PENDING','SIGNED','BROADCAST','CONFIRMED','FAILED','SKIPPED')),
  from_address     text NOT NULL,
  to_address       text NOT NULL,
  contract         text NOT NULL DEFAULT '',
  amount           numeric(78,0) NOT NULL,
  deduct_fee       boolean NOT NULL DEFAULT false,
  depends_on       text REFERENCES transfer_transactions (id),
  source_tx_refs   text[] NOT NULL DEFAULT '{}',
  reason           text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX transfer_transactions_open ON transfer_transactions (network, created_at)
  WHERE status IN ('PENDING','SIGNED','BROADCAST');

CREATE TABLE transfer_attempts (
  order_id      text NOT NULL REFERENCES transfer_transactions (id),
  attempt       integer NOT NULL,
  tx_hash       text NOT NULL,
  raw_tx        text NOT NULL,
  nonce         text,
  fee           numeric(78,0),
  status        text NOT NULL,
  block_height  bigint,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (order_id, attempt)
);

CREATE TABLE user_bank_data (
  user_id          text PRIMARY KEY,
  key_type         text NOT NULL CHECK (key_type IN ('cpf','cnpj','email','phone','evp')),
  pix_key          text NOT NULL,
  holder_document  text NOT NULL,
  holder_name      text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE payouts (
  id               text PRIMARY KEY,
  trade_id         text NOT NULL REFERENCES instant_trades (id),
  idempotency_key  text NOT NULL UNIQUE,
  provider         text NOT NULL,
  status           text NOT NULL,
  amount_centavos  bigint NOT NULL CHECK (amount_centavos > 0),
  key_type         text NOT NULL,
  pix_key          text NOT NULL,
  holder_document  text NOT NULL,
  holder_name      text NOT NULL,
  provider_id      text,
  end_to_end_id    text,
  failure_reason   text,
  attempt          integer NOT NULL DEFAULT 1,
  checks           integer NOT NULL DEFAULT 0,
  next_check_at    timestamptz NOT NULL DEFAULT now(),
  submitted_at     timestamptz,
  settled_at       timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payouts_trade ON payouts (trade_id);

-- Events to publish, written in the same transaction as the change they describe.
CREATE TABLE outbox (
  seq         bigserial PRIMARY KEY,
  event_id    text NOT NULL UNIQUE,
  trade_id    text,
  subject     text NOT NULL,
  payload     bytea NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  sent_at     timestamptz
);
CREATE INDEX outbox_unsent ON outbox (seq) WHERE sent_at IS NULL;

-- Per network: the last block whose reports are stored (the agents' resume point).
CREATE TABLE chain_cursors (
  network           text PRIMARY KEY,
  height            bigint NOT NULL,
  hash              text NOT NULL,
  finalized_height  bigint NOT NULL DEFAULT 0,
  head_height       bigint NOT NULL DEFAULT 0,
  updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Recent blocks as reported, so a repeated report is recognised and a reorg can be checked.
CREATE TABLE chain_blocks (
  network      text NOT NULL,
  height       bigint NOT NULL,
  hash         text NOT NULL,
  parent_hash  text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (network, height)
);

CREATE TABLE agent_leases (
  network      text PRIMARY KEY,
  holder       text NOT NULL,
  epoch        bigint NOT NULL,
  expires_at   timestamptz NOT NULL,
  acquired_at  timestamptz NOT NULL DEFAULT now(),
  renewed_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE idempotency_keys (
  user_id       text NOT NULL,
  key           text NOT NULL,
  request_hash  text NOT NULL,
  trade_id      text NOT NULL REFERENCES instant_trades (id),
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, key)
);
