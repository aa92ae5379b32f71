-- The inbox is pruned by age (shared/inbox.py, `prune_processed`): rows older than the
-- dedup horizon go. Rows are inserted in time order, so a BRIN index finds the old ones for
-- next to nothing, and costs each insert far less than a second B-tree would.
CREATE INDEX processed_events_age ON processed_events USING brin (processed_at);
