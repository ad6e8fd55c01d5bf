"""Serve the booking service on http://127.0.0.1:8001, its tables and hookruntime's in
one database, with hookruntime's delivery worker in the same process and its dashboard
at http://127.0.0.1:8001/hooks/ui/.

``cd examples && python -m booking_service``; ``BOOKING_DATABASE_URL`` (default
``sqlite:///booking_service.db``) picks the database, ``BOOKING_ORG`` (``acme``) the
org whose registrations are called, ``PORT`` the port.
"""

from __future__ import annotations

import os

import uvicorn

from .app import served


def main() -> None:
    url = os.environ.get("BOOKING_DATABASE_URL", "sqlite:///booking_service.db")
    app = served(url, org=os.environ.get("BOOKING_ORG", "acme"))
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8001")))


if __name__ == "__main__":
    main()
