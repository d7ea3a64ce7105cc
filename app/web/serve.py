"""Run the web process: `python -m app.web.serve` (HOST, PORT, WEB_CONCURRENCY from env)."""

from __future__ import annotations

import logging
import os

import uvicorn

from app.logs import configure_logging


class ClientFrameErrors(logging.Filter):
    """uvicorn logs a client's text frame that is not UTF-8 as an error with a traceback, then
    closes the socket with 1007: a client's mistake, so one warning line without the trace."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Invalid UTF-8 sequence received from client"):
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def main() -> None:
    json_logs = os.environ.get("LOG_FORMAT", "").strip().lower() == "json"
    if json_logs:  # uvicorn's own lines too, from the first one
        configure_logging(os.environ.get("LOG_LEVEL") or "INFO", "web", "json")
    logging.getLogger("uvicorn.error").addFilter(ClientFrameErrors())
    uvicorn.run(
        "app.web.app:create_app",
        factory=True,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8000")),
        workers=int(os.environ.get("WEB_CONCURRENCY", "1")),
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        access_log=os.environ.get("ACCESS_LOG", "") == "1",
        ws_max_size=64 * 1024,
        ws_per_message_deflate=False,  # per socket, it costs ~40 KiB and CPU for every frame
        log_level=os.environ.get("LOG_LEVEL", "info").lower(),
        log_config=None if json_logs else uvicorn.config.LOGGING_CONFIG,
    )


if __name__ == "__main__":
    main()
