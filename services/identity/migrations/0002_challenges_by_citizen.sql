-- A citizen's newest code, open or not, is read on every code request and sign-in (to
-- judge resends and to check the code): index every challenge by citizen, not only the
-- open ones, so that read never scans the table. The newest challenge is also the only
-- one that can be open (a new code supersedes the old), so one index serves both reads.
CREATE INDEX code_challenges_by_citizen ON code_challenges (citizen, created_at DESC);
DROP INDEX code_challenges_open;
