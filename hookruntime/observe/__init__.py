"""Observing a runtime: Prometheus metrics, structured logs, OpenTelemetry traces."""

from .exporter import exporting, serve_metrics
from .logs import JsonFormatter, TextFormatter, configure_logging
from .metrics import CONTENT_TYPE, Metrics
from .observer import Observer

__all__ = [
    "CONTENT_TYPE",
    "JsonFormatter",
    "Metrics",
    "Observer",
    "TextFormatter",
    "configure_logging",
    "exporting",
    "serve_metrics",
]
