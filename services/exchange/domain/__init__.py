"""The exchange's domain, pure (no I/O): what the use cases ask and what they store.

- `registers`: agencies, data services and access rights, and the terms submitted for them.
- `authorisation`: whether a signature holds, and whether a request may be forwarded.
- `transaction`: a request's `Transaction`, whose methods decide each step and return it
  with its audit record and its events.
- `schemas`: agencies' JSON Schemas, judged before they are accepted and applied at a
  bounded cost (regular expressions in RE2 only).
- `audit`: the audit log's records and its hash chain.
"""
