-- Transfer orders as the agents execute them: what each order waits for, the fee limit for
-- sweeps, and one order of each kind in flight per trade.
ALTER TABLE transfer_transactions
  ADD COLUMN max_fee numeric(78,0),
  ADD COLUMN confirmed_tx_hash text,
  ADD COLUMN block_height bigint;

ALTER TABLE system_wallets
  ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

-- At most one live sweep and one live refund per trade (a failed one may be retried).
CREATE UNIQUE INDEX transfer_one_live_sweep ON transfer_transactions (trade_id)
  WHERE kind = 'SWEEP' AND status NOT IN ('FAILED');
CREATE UNIQUE INDEX transfer_one_live_refund ON transfer_transactions (trade_id)
  WHERE kind = 'REFUND' AND status NOT IN ('FAILED');
CREATE INDEX transfer_transactions_trade ON transfer_transactions (trade_id);
