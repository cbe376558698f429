"""Where alerts go besides the alerts topic: webhooks, plain or Alertmanager-shaped."""

from streams.runtime.sinks.webhook import (
    Park,
    WebhookSettings,
    WebhookSink,
    alertmanager_alert,
    sign,
    verify_signature,
)

__all__ = [
    "Park",
    "WebhookSettings",
    "WebhookSink",
    "alertmanager_alert",
    "sign",
    "verify_signature",
]
