"""The metrics service's storage: its own Postgres schema `metrics`, reached with asyncpg.

The schema is created by `migrations/`; besides the service's tables it holds the outbox
and the inbox every service keeps (`shared/migrations`).
"""
