"""A tiny Django project that emits in its own transactions: saving a ``Booking`` and
emitting ``booking_state_changed`` commit together, or not at all.

Django and hookruntime share one database (SQLite file or PostgreSQL), named by
``HOOKRUNTIME_DATABASE_URL``. The emit goes through Django's own DB-API connection
(``django.db.connection.connection``), inside ``transaction.atomic()``; a worker
anywhere (this process, or ``hookruntime worker``) delivers it once Django commits.

    HOOKRUNTIME_DATABASE_URL=sqlite:///hooks.db python -m examples.django_host book alice
"""
