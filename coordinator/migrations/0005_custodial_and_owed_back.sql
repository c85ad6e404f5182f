-- Custodial sells, refunds of what a trade did not pay for, and rebalancing to cold.

-- A user's custodial wallet on a network: an address the network's agent derives from its seed on
-- the custodial account path (EVM m/44'/60'/2'/0/i). Never a key.
CREATE TABLE custodial_accounts (
  network           text NOT NULL,
  user_id           text NOT NULL,
  address           text NOT NULL,
  derivation_index  bigint NOT NULL CHECK (derivation_index >= 0 AND derivation_index < 2147483648),
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (network, user_id),
  UNIQUE (network, address),
  UNIQUE (network, derivation_index)
);

-- A custodial sell's "deposit address" is the user's custodial address, the same for each of their
-- sells: only pool addresses stay unique to one trade.
ALTER TABLE instant_trades DROP CONSTRAINT instant_trades_network_deposit_address_key;
CREATE UNIQUE INDEX instant_trades_deposit_address ON instant_trades (network, deposit_address) WHERE source = 'deposit';
CREATE INDEX instant_trades_custodial ON instant_trades (network, deposit_address) WHERE source = 'custodial';

-- The crypto amount a confirmed trade's payout covers (set with PAYMENT_CONFIRMED from its final
-- deposits): what was confirmed, or the quoted amount when an over-payment's excess goes back.
ALTER TABLE instant_trades ADD COLUMN paid_amount numeric(78,0);

-- What a refund gives back: the whole trade, the excess of an over-payment, or deposits that came
-- after the trade's funds were already moved. One live refund per trade and purpose, except late
-- deposits (each order names its own deposits in source_tx_refs).
ALTER TABLE transfer_transactions
  ADD COLUMN purpose text NOT NULL DEFAULT 'trade' CHECK (purpose IN ('trade', 'excess', 'late_deposit', 'rebalance'));
DROP INDEX transfer_one_live_refund;
CREATE UNIQUE INDEX transfer_one_live_refund ON transfer_transactions (trade_id, purpose)
  WHERE kind = 'REFUND' AND purpose IN ('trade', 'excess') AND status NOT IN ('FAILED');
CREATE UNIQUE INDEX transfer_one_live_custodial_sell ON transfer_transactions (trade_id)
  WHERE kind = 'CUSTODIAL_SELL' AND status NOT IN ('FAILED', 'SKIPPED');
-- At most one rebalance in flight per network: the next is planned from the balance after it.
CREATE UNIQUE INDEX transfer_one_live_rebalance ON transfer_transactions (network, contract)
  WHERE kind = 'REBALANCE' AND status IN ('PENDING', 'SIGNED', 'BROADCAST');

-- The hot wallet's balance as its agent last read it (per asset), for rebalancing above the ceiling.
CREATE TABLE system_wallet_balances (
  network      text NOT NULL,
  address      text NOT NULL,
  contract     text NOT NULL DEFAULT '',
  balance      numeric(78,0) NOT NULL CHECK (balance >= 0),
  block_height bigint NOT NULL,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (network, address, contract)
);
