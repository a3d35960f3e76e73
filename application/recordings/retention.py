"""Delete recordings older than their tenant's retention, and record each deletion.

Each object older than its tenant's retention (``retention_by_tenant``, else
``retention_days``; neither: kept) gets ``Call.RecordingDeleted`` (reason
``retention``) first, then is deleted. In that order a crash between the two
leaves an object whose deletion is recorded, deleted at the next run (the
event is not stored twice); the other order could delete an object and never
record it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from application.calls import CallService
from application.recordings.settings import RecordingSettings
from application.recordings.storage import ObjectStore
from application.recordings.uploader import call_of_key
from domain.call import CallNotFound

log = logging.getLogger(__name__)

REASON = "retention"


def expire(store: ObjectStore, calls: CallService, settings: RecordingSettings,
           now: datetime) -> list[str]:
    """Delete what retention lets go at ``now``; the keys deleted."""
    by_tenant = settings.tenant_retention()
    if settings.retention_days is None and not by_tenant:
        return []
    deleted = []
    for stored in store.objects():
        named = call_of_key(stored.key)
        if named is None:
            continue  # not a recording this platform wrote
        tenant, call_id = named
        days = by_tenant.get(tenant, settings.retention_days)
        if days is None or stored.last_modified > now - timedelta(days=days):
            continue
        try:
            calls.delete_recording(call_id, store.bucket, stored.key, REASON, now)
        except CallNotFound:
            log.warning("object %s names no stored call; deleting it anyway", stored.key)
        store.delete(stored.key)
        deleted.append(stored.key)
    if deleted:
        log.info("retention deleted %d recording(s) from %s", len(deleted), store.bucket)
    return deleted
