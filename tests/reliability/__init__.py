"""The reliability harness: crash campaign, concurrent chaos, their ledger and checks.

- :mod:`reliability.ledger`: what a writer acknowledged (its side ledger) and the model the
  driver builds from ledgers, with the invariant checks run after every kill.
- :mod:`reliability.writer`: the writer loop (single events, batches, multi-run batches, status
  changes, deletes) that records every acknowledged append.
- :mod:`reliability.campaign`: the drivers (kill loop, chaos with readers) and the command line
  used by ``make torture`` (``python -m reliability.campaign --help``).

The fast part runs in ``tests/test_crash_campaign.py`` (``make test``); figures of the long
runs are in ``tests/RELIABILITY.md``.
"""
