"""A notification target checked when a workflow is created: an allowed destination (its
addresses resolved and checked) and a secret name the gateway knows for the caller's tenant."""

from __future__ import annotations

from ponder.workflow.v1 import workflow_service_pb2 as workflow_pb2
from ponder_gateway.webhooks.destinations import DestinationPolicy, RefusedDestination
from ponder_gateway.webhooks.secrets import WebhookSecrets
from ponder_runtime import RequestValidator


class WebhookTargets:
    """Checks notification targets against the gateway's destinations and secrets."""

    def __init__(self, policy: DestinationPolicy, secrets: WebhookSecrets) -> None:
        self._policy = policy
        self._secrets = secrets

    async def check(
        self, target: workflow_pb2.NotificationTarget, tenant: str, prefix: str
    ) -> None:
        """InvalidArgumentError naming each bad field (`<prefix>url`, `<prefix>secret_name`)."""
        check = RequestValidator()
        if not target.url:
            check.add(f"{prefix}url", "is required")
        else:
            try:
                await self._policy.addresses(self._policy.parse(target.url))
            except RefusedDestination as exc:
                check.add(f"{prefix}url", f"is not an allowed webhook destination: {exc}")
        if not target.secret_name:
            check.add(f"{prefix}secret_name", "is required (the name of a configured secret)")
        elif self._secrets.lookup(target.secret_name, tenant) is None:
            check.add(
                f"{prefix}secret_name",
                f"{target.secret_name!r} is not a webhook secret configured on this gateway",
            )
        check.check()
