"""The webhook parts the gateway builds from its settings."""

from __future__ import annotations

from opentelemetry.metrics import Meter
from opentelemetry.trace import Tracer

from ponder_gateway.settings import GatewaySettings
from ponder_gateway.webhooks.delivery import Deliverer, Records, RetryPolicy
from ponder_gateway.webhooks.destinations import DestinationPolicy
from ponder_gateway.webhooks.secrets import WebhookSecrets, parse_secrets, read_secrets_file
from ponder_gateway.webhooks.sender import Sender
from ponder_gateway.webhooks.targets import WebhookTargets
from ponder_rest.codec import JsonOptions


def destination_policy(settings: GatewaySettings) -> DestinationPolicy:
    """Allowed hosts and networks."""
    return DestinationPolicy(
        hosts=settings.webhook_allowed_hosts, networks=settings.webhook_allowed_networks
    )


def webhook_secrets(settings: GatewaySettings) -> WebhookSecrets:
    """The secrets of the setting, with the file's merged over them."""
    given = {name: s.get_secret_value() for name, s in settings.webhook_secrets.items()}
    secrets = parse_secrets(given)
    if settings.webhook_secrets_file is not None:
        secrets.update(read_secrets_file(settings.webhook_secrets_file))
    return WebhookSecrets(secrets)


def webhook_targets(settings: GatewaySettings) -> WebhookTargets:
    """The servicer's check of notification targets."""
    return WebhookTargets(destination_policy(settings), webhook_secrets(settings))


def deliverer(
    settings: GatewaySettings, records: Records, sender: Sender, meter: Meter, tracer: Tracer
) -> Deliverer:
    """Deliveries as the settings say (the payload in the REST facade's JSON form)."""
    return Deliverer(
        records,
        destination_policy(settings),
        webhook_secrets(settings),
        sender,
        retry=RetryPolicy(
            initial_seconds=settings.webhook_initial_backoff_seconds,
            max_seconds=settings.webhook_max_backoff_seconds,
            total_seconds=settings.webhook_retry_seconds,
            timeout_seconds=settings.webhook_timeout_seconds,
        ),
        json=JsonOptions(
            use_proto_names=settings.json_use_proto_names,
            emit_unpopulated=settings.json_emit_unpopulated,
        ),
        meter=meter,
        tracer=tracer,
    )
