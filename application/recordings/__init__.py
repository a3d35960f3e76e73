"""Call recordings in S3-compatible object storage (issue 14 §5; docs/recordings.md).

The B2BUA worker writes each recording to local disk and stores
``Call.RecordingAvailable`` when the WAV is complete. ``dialtone recordings`` (a
process of its own: boto3 and the uploads stay off the call path and out of the
workers' memory) uploads the complete files (``uploader``), stores
``Call.RecordingStored`` and removes the local copy, and deletes objects older
than the retention setting (``retention``), storing ``Call.RecordingDeleted``.
The API streams an object, or redirects to a presigned URL (``storage``).

Here, not in adapters/: the API (``GET /v1/calls/{id}/recording``) and the
process both reach the same store, and the layers contract keeps api/ from
importing adapters/.
"""
