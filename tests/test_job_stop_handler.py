"""The job processes' SIGTERM handler is only taken by processes the job cluster started: a job
run inline (a request's thread, a test) leaves the process's signals alone. Stopping a live job
worker is tested in tests/nodes/test_graceful_stop.py."""

from __future__ import annotations

import signal

from tasks.cluster import install_stop_handler


def test_stop_handler_is_not_installed_in_a_process_the_cluster_did_not_start():
    before = signal.getsignal(signal.SIGTERM)

    install_stop_handler(sender="django_q", proc_name="inline")

    assert signal.getsignal(signal.SIGTERM) is before
