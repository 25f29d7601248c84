"""Every SQL statement the tool runs, split by concern; typed records out (``records``).

Functions take an open ``Connection`` inside a transaction the service layer started; none of
them commits, and none decides anything a rule should decide. Modules:

- ``runs``: run facts, pages and per-portal reads, the clean-up compare-and-set, restore, delete
- ``events``: the audit trail
- ``tenders``: stored tenders (counts per run, which a portal has, a run's own)
- ``worker``: what a scraper's worker writes (claim lock, new run, take-over, fenced writes)
- ``deletions``: what a deleted run owned (watermarks), so a reused run id inherits nothing
- ``checkpoints``: each tracked run's checkpoint row (cursor, tender ids, when it moved)
- ``demo``: the demo fleet's marks on its own runs
- ``accounts``: dashboard users, sessions and failed-login counters
- ``monitor``: the monitor's lease, cycles, problems, outbox and channel cursors
- ``schema``: the schema version adoption records
"""
