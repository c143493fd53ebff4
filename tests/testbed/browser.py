"""A real headless Chromium driven over the DevTools protocol, for the annotation page tests.

Why this and not a package: playwright downloads its own browser (no network here), and selenium
would add a dependency for what is four calls (navigate, evaluate, wait, screenshot). Debian's
``chromium`` speaks the DevTools protocol over a websocket; the client below is a small websocket
client on the standard library (RFC 6455: one handshake, masked text frames out, unmasked frames
in). Chromium is started on a free port with its own profile folder and stopped by its PID.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse


def chromium_path() -> str | None:
    """The chromium executable, or None when it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class DevTools:
    """One page of a headless Chromium, driven by DevTools protocol calls."""

    def __init__(self, profile: Path, timeout: float = 30.0) -> None:
        self.process = subprocess.Popen(
            [
                chromium_path() or "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-extensions",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                f"--user-data-dir={profile}",
                "--window-size=1000,1100",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.timeout = timeout
        port = self._port(profile / "DevToolsActivePort")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as reply:
            pages = [t for t in json.load(reply) if t["type"] == "page"]
        self.sock = self._connect(pages[0]["webSocketDebuggerUrl"])
        self.next_id = 0

    def _port(self, file: Path) -> int:
        """The DevTools port Chromium wrote into its profile folder."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if file.exists() and file.read_text().strip():
                return int(file.read_text().split()[0])
            if self.process.poll() is not None:
                raise RuntimeError("chromium exited before it opened its DevTools port")
            time.sleep(0.1)
        raise TimeoutError("chromium did not open its DevTools port")

    def _connect(self, url: str) -> socket.socket:
        """The websocket handshake."""
        parts = urlparse(url)
        sock = socket.create_connection((parts.hostname, parts.port), timeout=self.timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                f"GET {parts.path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += sock.recv(1024)
        if b" 101 " not in reply.split(b"\r\n")[0]:
            raise RuntimeError(f"websocket handshake refused: {reply[:80]!r}")
        return sock

    def _read(self, n: int) -> bytes:
        """Exactly ``n`` bytes."""
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("chromium closed the websocket")
            data += chunk
        return data

    def _send(self, text: str) -> None:
        """One masked text frame."""
        payload, mask = text.encode(), os.urandom(4)
        n = len(payload)
        size = (
            bytes([0x80 | n])
            if n < 126
            else bytes([0x80 | 126]) + n.to_bytes(2, "big")
            if n < 65536
            else bytes([0x80 | 127]) + n.to_bytes(8, "big")
        )
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x81]) + size + mask + masked)

    def _message(self) -> str:
        """One whole message (continuation frames joined)."""
        data = b""
        while True:
            first, second = self._read(2)
            n = second & 0x7F
            if n == 126:
                n = int.from_bytes(self._read(2), "big")
            elif n == 127:
                n = int.from_bytes(self._read(8), "big")
            data += self._read(n)
            if first & 0x80:
                return data.decode()

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events in between are skipped)."""
        self.next_id += 1
        self._send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._message())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def js(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def open(self, url: str) -> None:
        """Navigate and wait for the page to load."""
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")

    def wait_for(self, condition: str) -> None:
        """Poll a JavaScript condition until it holds (each poll is cheap; no fixed sleeps)."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.js(f"Boolean({condition})"):
                return
            time.sleep(0.05)
        raise TimeoutError(f"the page never met: {condition}")

    def screenshot(self, path: Path) -> None:
        """A PNG of the page."""
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(data["data"]))

    def close(self) -> None:
        """Close the socket and stop chromium by its PID."""
        self.sock.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
