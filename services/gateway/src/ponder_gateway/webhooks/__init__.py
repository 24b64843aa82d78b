"""Completion webhooks: a workflow's JSON POSTed to its notification target when it ends,
signed, retried with backoff, and only to destinations the gateway allows."""
