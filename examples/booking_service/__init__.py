"""A small booking service: bookings move through a python-statemachine workflow whose
``confirm`` waits on the ``before_confirmation`` hook, and every transition writes
``booking_state_changed`` to hookruntime's outbox in the same database transaction.

Run: ``cd examples && python -m booking_service`` (see the README).
"""
