from __future__ import annotations

from django.db import models


class Booking(models.Model):
    guest = models.CharField(max_length=100)
    state = models.CharField(max_length=20, default="requested")

    def document(self) -> dict[str, str]:
        return {"id": str(self.pk), "state": self.state, "customer_name": self.guest}
