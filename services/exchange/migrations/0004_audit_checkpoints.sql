-- How far the exchange's signed checkpoints of the audit chain reached (they travel on
-- exchange.audit-checkpoints, outside the database). Only bookkeeping: whoever resets it
-- makes the exchange sign those records again, and a rewritten history then contradicts
-- what it signed before. It is the exchange's own table; the audit log stays append-only.
CREATE TABLE audit_checkpoint (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    seq bigint NOT NULL,
    signed_at timestamptz NOT NULL
);
INSERT INTO audit_checkpoint (seq, signed_at) VALUES (0, 'epoch');
