"""A real `neardup serve` on a free port of this machine, and a small SSE client for tests."""
from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import cli_env


@dataclass
class Server:
    host: str
    port: int
    proc: subprocess.Popen[str]

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def get(self, path: str) -> tuple[int, Any]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            kind = resp.getheader("content-type", "")
            return resp.status, json.loads(body) if kind.startswith("application/json") else body.decode()
        finally:
            conn.close()


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    proc = subprocess.Popen([sys.executable, "-m", "neardup", "serve", "--port", "0"],
                            env=cli_env(database_url, tmp_path / "home"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    found = re.search(r"http://([\d.]+):(\d+)/", line)
    assert found, f"serve did not start: {line}{proc.stderr.read() if proc.poll() is not None else ''}"
    try:
        yield Server(found.group(1), int(found.group(2)), proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class SSE:
    """One Server-Sent Events connection: messages as dicts with id, event and data."""

    def __init__(self, server: Server, path: str, last_event_id: int | None = None) -> None:
        self.conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.conn.request("GET", path, headers=headers)
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200, self.resp.read()
        assert self.resp.getheader("content-type", "").startswith("text/event-stream")

    def messages(self) -> Iterator[dict[str, Any]]:
        message: dict[str, Any] = {}
        while line := self.resp.fp.readline():
            text = line.decode().rstrip("\n")
            if not text:
                if "data" in message:
                    message["data"] = json.loads(message["data"])
                    yield message
                message = {}
            elif not text.startswith(":"):
                field, _, value = text.partition(": ")
                message[field] = int(value) if field == "id" else value

    def close(self) -> None:
        # Drop the connection as a browser losing the network would: no goodbye.
        self.resp.close()
        self.conn.close()
