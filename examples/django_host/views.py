"""``POST /bookings`` (form field ``guest``) stores a booking and emits
``booking_state_changed`` in one transaction; ``fail=1`` fails it after the emit, to
show that nothing is sent then."""

from __future__ import annotations

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .hooks import hooks
from .models import Booking

ORG = "acme"


class BookingFailed(Exception):
    pass


def request_booking(guest: str, *, fail: bool = False) -> Booking:
    runtime = hooks()
    with transaction.atomic():
        booking = Booking.objects.create(guest=guest)
        data = {
            "booking": {"id": str(booking.pk), "state": booking.state},
            "transition": {"name": "request", "from": "new", "to": booking.state},
        }
        # Django's own DB-API connection: the event is in this transaction.
        runtime.emit(
            "booking_state_changed",
            data,
            org=ORG,
            key=str(booking.pk),
            session=connection.connection,
        )
        # Workers in this process start at once; others see the commit themselves.
        transaction.on_commit(runtime.wake)
        if fail:
            raise BookingFailed("the payment was declined")
    return booking


@csrf_exempt
@require_POST
def book(request: HttpRequest) -> HttpResponse:
    try:
        booking = request_booking(request.POST["guest"], fail=request.POST.get("fail") == "1")
    except BookingFailed as exc:
        return JsonResponse({"title": str(exc)}, status=409)
    return JsonResponse({"id": booking.pk, "state": booking.state}, status=201)
