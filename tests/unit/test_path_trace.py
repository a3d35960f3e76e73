"""devtools.path_trace counts a file once, in the order the call reached it, only on
the call's threads and before its CDR row was read back (docs/architecture.md's count)."""

from __future__ import annotations

from devtools.path_trace import NOT_COUNTED, on_path, parse

LOG = [
    "10.0\tMainThread\tadapters/sip/worker.py\tonIncomingCall",
    "10.1\tMainThread\tapplication/b2bua/plain.py\t__init__",
    "10.2\tdialtone-follower\tadapters/sip/routing/follower.py\t_step",
    "10.3\tMainThread\tapplication/metrics.py\tsip_final_response",
    "10.4\tdialtone-storage\tapplication/calls.py\tbatch",
    "10.5\tMainThread\tadapters/sip/worker.py\t_incoming",
    "12.0\tMainThread\tadapters/media/player.py\tclose",
]


def test_the_call_threads_files_once_each_in_order_until_the_row() -> None:
    files = on_path(parse(LOG), ("MainThread", "dialtone-storage"), until=11.0)

    assert files == ["adapters/sip/worker.py", "application/b2bua/plain.py",
                     "application/calls.py"]


def test_another_thread_and_the_cross_cutting_modules_are_not_counted() -> None:
    files = on_path(parse(LOG), ("MainThread",), until=99.0)

    assert "adapters/sip/routing/follower.py" not in files  # the offer follower's thread
    assert "application/metrics.py" in NOT_COUNTED
    assert "application/metrics.py" not in files
    assert files[-1] == "adapters/media/player.py"  # after the row only when until allows
