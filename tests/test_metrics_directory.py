"""The per-server metrics directory manage.py serve hands its gunicorn and job worker."""

from __future__ import annotations

import socket

from imageservice.metrics.multiprocess import server_environment


def test_server_directory_under_data_dir_emptied_at_start(data_dir, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.delenv("NODE_NAME", raising=False)
    directory = data_dir / "metrics" / "127.0.0.1-8123"
    directory.mkdir(parents=True)
    (directory / "counter_4242.db").write_bytes(b"counts of the previous run")

    env = server_environment("127.0.0.1", "8123")

    assert env["PROMETHEUS_MULTIPROC_DIR"] == str(directory)
    assert list(directory.iterdir()) == []
    assert env["NODE_NAME"] == f"{socket.gethostname()}:8123"


def test_operator_directory_loses_only_metric_files(tmp_path, monkeypatch):
    tmp_path = tmp_path / "operator-metrics"
    tmp_path.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setenv("NODE_NAME", "node-7")
    (tmp_path / "histogram_17.db").write_bytes(b"old")
    (tmp_path / "README").write_text("the operator's")

    env = server_environment("0.0.0.0", "9292")

    assert sorted(path.name for path in tmp_path.iterdir()) == ["README"]
    assert (env["PROMETHEUS_MULTIPROC_DIR"], env["NODE_NAME"]) == (str(tmp_path), "node-7")
