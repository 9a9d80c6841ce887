"""carebound.domain: the pure rule libraries. No I/O: no Redis, no connectors, no tools, no agents.

Data in, a verdict out; every function here is deterministic and safe to call anywhere.

- ``carebound.domain.identity``: is this the same person, and which fields of two records of
  them disagree (low risk, fixed automatically; high risk, held for a person);
- ``carebound.domain.coverage``: is a referral's insurance in force on the date of service;
- ``carebound.domain.three_way``: an invoice against its purchase order and goods receipt;
- ``carebound.domain.documents``: what a referral is missing, what an untyped fax is, and
  whether a document's text carries instructions aimed at software or staff (DOC-2);
- ``carebound.domain.drafts``: the checks a model's text passes before it is used (the free
  text of an outreach message, a packet summary whose every sentence cites its facts).

Imports point one way: agents -> tools -> domain -> fhir.
"""
