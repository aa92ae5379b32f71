-- An answered payload is kept until its outcome is delivered (its event published) and
-- the retention period has passed; then it is removed from the stored outcome and only
-- its digest (SHA-256 of its canonical JSON) stays. `completion_event_id` names the
-- outcome's event in the outbox, to tell when it was published.
ALTER TABLE transactions
    ADD COLUMN payload_digest text,
    ADD COLUMN payload_removed_at timestamptz,
    ADD COLUMN completion_event_id uuid;
-- What the retention pass looks for: payloads still kept, oldest outcome first.
CREATE INDEX transactions_payload_kept ON transactions (completed_at)
    WHERE status = 'answered' AND payload_removed_at IS NULL;
