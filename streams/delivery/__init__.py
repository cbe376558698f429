"""Alert delivery: webhooks (plain, Alertmanager, Slack, PagerDuty) fed by the alerts topic.

``driftline deliver`` runs :func:`make_delivery_app`, a Faust app in its own
consumer group; the worker only publishes alerts on the topic. Importing this
package imports neither Faust nor aiohttp.
"""

from streams.delivery.app import Delivery, make_delivery_app
from streams.delivery.formats import alertmanager_alert, pagerduty_event, slack_message
from streams.delivery.receiver import Receiver
from streams.delivery.webhook import WebhookSettings, sign, verify_signature

__all__ = [
    "Delivery",
    "Receiver",
    "WebhookSettings",
    "alertmanager_alert",
    "make_delivery_app",
    "pagerduty_event",
    "sign",
    "slack_message",
    "verify_signature",
]
