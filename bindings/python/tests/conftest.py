"""Fixtures: a real weft-relay process per test, and a helper to run coroutines."""

import asyncio
import os
import queue
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

RELAY_BIN = os.environ.get("WEFT_RELAY_BIN")


class Relay:
    """A weft-relay process on 127.0.0.1, restartable on the same port and data folder."""

    def __init__(self, data: Path, flags: list):
        self.data = data
        self.flags = flags
        self.port = 0
        self.process = None
        self.log = []

    def start(self, timeout=20.0):
        if not RELAY_BIN or not Path(RELAY_BIN).exists():
            pytest.fail(f"WEFT_RELAY_BIN must name the weft-relay binary (got {RELAY_BIN!r})")
        self.process = subprocess.Popen(
            [RELAY_BIN, "--listen", f"127.0.0.1:{self.port}", "--data", str(self.data), *self.flags],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Its log is drained by a thread (so it never blocks on a full pipe) until it exits.
        lines = queue.Queue()

        def drain(stream):
            for line in stream:
                self.log.append(line)
                lines.put(line)
            lines.put(None)

        threading.Thread(target=drain, args=(self.process.stderr,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise RuntimeError(f"weft-relay did not listen within {timeout} s:\n" + "".join(self.log))
            if line is None:
                raise RuntimeError("weft-relay exited before listening:\n" + "".join(self.log))
            found = re.search(r"address=127\.0\.0\.1:(\d+)", line)
            if found:
                self.port = int(found.group(1))
                return self

    @property
    def url(self):
        return f"ws://127.0.0.1:{self.port}"

    def token(self, *args):
        """A token minted by the relay binary for its own secret."""
        out = subprocess.run(
            [RELAY_BIN, "token", "--data", str(self.data), *args],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def relay(tmp_path):
    """A relay that requires tokens (its default)."""
    relay = Relay(tmp_path / "relay", []).start()
    yield relay
    relay.stop()


def run(coroutine, timeout=60):
    """Runs a test coroutine on a fresh event loop, with a bound on how long it may take."""
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


async def eventually(what, condition, timeout=15.0):
    """Waits until `condition()` is true, polling; fails the test naming `what`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
