"""A real S3-compatible HTTP server for the bench and the tests: moto's standalone server on a
free loopback port.

The bucket target talks to it over HTTP exactly as to Railway's buckets or MinIO (path-style
requests, SigV4 signed); nothing in the client is patched.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from sharedstate.durability.bucket import BucketTarget

_AUTH = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class S3Server:
    """moto_server in a subprocess; ``bucket()`` makes a new empty bucket."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        for _ in range(5):
            self.port = _free_port()
            log = open(self.directory / "moto.log", "ab")  # noqa: SIM115 - the child holds it
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"},
            )
            log.close()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1).close()
                    return
                except (urllib.error.URLError, OSError):
                    time.sleep(0.05)
            self.stop()
        raise RuntimeError(f"moto_server did not start; see {self.directory / 'moto.log'}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def bucket(self) -> str:
        """A new empty bucket's name."""
        name = f"test-{secrets.token_hex(6)}"
        request = urllib.request.Request(
            f"{self.endpoint}/{name}", data=b"", method="PUT", headers={"Authorization": _AUTH}
        )
        urllib.request.urlopen(request, timeout=10).close()
        return name

    def env(self) -> dict[str, str]:
        """The AWS variables a service is given to reach this server."""
        return {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test-secret",
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_S3_FORCE_PATH_STYLE": "true",
        }

    def target(self, bucket: str | None = None, prefix: str = "backups") -> BucketTarget:
        """A bucket target on a new bucket (or ``bucket``)."""
        return BucketTarget.from_environment(bucket or self.bucket(), prefix, self.env())
