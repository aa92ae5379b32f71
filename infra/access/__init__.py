"""Each agency's channel and credentials, made and unmade as the catalog registers it.

The access manager follows `catalog.agencies` as the broker's super user. For every
agency it makes the channel's topics (`agency.<code>.*`), a principal `agency-<code>`
with a generated secret, and the channel's ACLs; for an agency the catalog deactivates,
it removes the agency's ACLs and its principal, which cuts its clients off at their next
request, and keeps the topics and the platform's ACLs (what the exchange still owes it
must not block the exchange). The same reconciliation runs in `panjereh init` and
`panjereh acl apply`, so the three can never disagree.
"""
