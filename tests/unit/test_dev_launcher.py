"""The development launcher prints the URL only once /readyz says the stack is ready."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app import dev


class FakeWeb:
    """/healthz always 200; /readyz 503 for its first `not_ready` calls, then 200."""

    def __init__(self, not_ready: int) -> None:
        self.not_ready = not_ready
        self.answers: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def answer(self, path: str) -> int:
        with self.lock:
            if path == "/readyz":
                ready = sum(1 for p, _ in self.answers if p == "/readyz") >= self.not_ready
                status = 200 if ready else 503
            else:
                status = 200 if path == "/healthz" else 404
            self.answers.append((path, status))
            return status


@pytest.fixture
def serve() -> Iterator[object]:
    servers: list[ThreadingHTTPServer] = []

    def start(web: FakeWeb) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status = web.answer(self.path)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_the_url_is_printed_only_after_readyz_answers_200(
    serve: object, capsys: pytest.CaptureFixture[str]
) -> None:
    web = FakeWeb(not_ready=3)
    url = serve(web)  # type: ignore[operator]
    dev._banner(url, threading.Event())
    printed = capsys.readouterr().out
    assert f"running at {url}" in printed
    assert ("/readyz", 200) in web.answers, web.answers
    assert [s for p, s in web.answers if p == "/readyz"] == [503, 503, 503, 200]


def test_nothing_is_printed_if_the_stack_stops_before_it_is_ready(
    serve: object, capsys: pytest.CaptureFixture[str]
) -> None:
    web = FakeWeb(not_ready=10**9)
    url = serve(web)  # type: ignore[operator]
    stop = threading.Event()
    original = web.answer

    def answer_then_stop(path: str) -> int:
        status = original(path)
        if len(web.answers) >= 3:
            stop.set()
        return status

    web.answer = answer_then_stop  # type: ignore[method-assign]
    dev._banner(url, stop)
    assert "running at" not in capsys.readouterr().out
