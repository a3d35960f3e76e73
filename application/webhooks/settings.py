"""Webhook delivery settings, read from `DIALTONE_WEBHOOK_*` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebhookSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIALTONE_WEBHOOK_", extra="ignore")

    allow_nets: str = Field(
        default="", description="Comma-separated networks (e.g. `127.0.0.1/32,10.1.0.0/16`) a "
        "target may resolve to although they are loopback, private or link-local.")
    timeout_s: float = Field(default=10.0, gt=0, description="Whole attempt, connect to last "
                             "byte read.")
    max_response_bytes: int = Field(default=65536, gt=0, description="Read at most this much "
                                    "of a response; the rest is dropped.")
    backoff_base_s: float = Field(default=1.0, gt=0, description="Wait after a first failure.")
    backoff_max_s: float = Field(default=3600.0, gt=0, description="Longest wait between tries.")
    disable_after_s: float = Field(
        default=3 * 24 * 3600.0, gt=0, description="A subscription whose every attempt has "
        "failed for this long is disabled.")
    cdr_wait_s: float = Field(
        default=30.0, ge=0, description="How long a call-ended delivery waits for the call's "
        "CDR row (its key fields go in `data.cdr`) before it is sent without them.")
    batch: int = Field(default=500, gt=0, description="Deliveries claimed per round.")
    concurrency: int = Field(default=32, gt=0, description="Requests in flight at once (and "
                             "connections kept open for reuse).")
    retention_s: float = Field(
        default=7 * 24 * 3600.0, gt=0, description="Delivered deliveries and delivery-log "
        "attempts older than this are deleted (pending deliveries never are); redelivery "
        "reaches back this far.")
    prune_every_s: float = Field(default=60.0, gt=0, description="How often the dispatcher "
                                 "deletes what retention_s let go.")
    prune_batch: int = Field(default=1000, gt=0, description="Rows deleted per statement.")
    prune_max_batches: int = Field(default=20, gt=0, description="Statements per table per "
                                   "pruning (the rest waits for the next one).")
    poll_s: float = Field(default=0.05, gt=0, description="Pause when nothing is due.")
