"""Identity's use cases: what citizens, agencies, operators and the issuer may do.

Each is an async function of the storage it works through (`ports.Statements` or
`ports.IdentityWork`) and of the service's `ports.Dependencies`; it returns a result or
raises a `shared.errors.DomainError`, and knows nothing of HTTP, SQL or Kafka. Routes
(`http.py`) and event handlers (`handlers.py`) call them.
"""
