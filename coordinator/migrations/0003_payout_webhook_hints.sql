-- A verified webhook about one of our payouts is a hint that the payout changed. It is kept
-- until a payout worker has re-read that payout from the provider (handled_at), so the webhook
-- path never waits on a payout's row lock (held during provider calls) and a hint outlives a
-- crash of the replica that received it.
ALTER TABLE webhook_events ADD COLUMN handled_at timestamptz;
UPDATE webhook_events SET handled_at = received_at;
CREATE INDEX webhook_events_pending ON webhook_events (provider, our_key) WHERE handled_at IS NULL;
