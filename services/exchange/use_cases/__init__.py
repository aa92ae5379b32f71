"""The exchange's use cases: what routes and consumers call.

Each is a function of a unit of work (`ports.ExchangeWork`) that returns a result or
raises a `shared.errors.DomainError`; none knows HTTP, SQL or Kafka.

- `transactions`: take_request, take_answer, time_out_overdue.
- `registers`: register_data_service, data_services, grant_access, revoke_access,
  signing_key, public_keys, record_agency, record_agency_key, revoke_agency_key.
- `gateway`: submit_request, gateway_outcome.
- `citizens`: citizen_data_requests.
- `audit`: sign_checkpoints (the audit chain's anchors).
"""

from services.exchange import messages as _messages  # noqa: F401 (registers the codes raised here)
