"""The process one Python function runs in under ``infra dev`` (the local Lambda runtime).

Started by :class:`infra.dev.functions.FunctionHost` as
``python -m infra.dev.runtime <source folder> <module.function>`` with the function's
environment (link variables, AWS endpoint). It imports the handler once, then reads
one JSON request per line on stdin and writes one JSON answer per line to the file
descriptor in ``HARBOR_DEV_RESULT_FD``; the handler's prints and logs go to
stdout/stderr, which the supervisor shows in its log stream.

Nothing here imports pulumi: handlers run as they would on Lambda.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import threading
import time
import traceback
from typing import Any


class Context:
    """The parts of Lambda's context object handlers use."""

    def __init__(self, request_id: str, deadline_ms: float) -> None:
        self.aws_request_id = request_id
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.invoked_function_arn = os.environ.get("HARBOR_DEV_FUNCTION_ARN", "")
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc),
    }


def _end_with_parent(parent: int) -> None:
    """Exit when ``infra dev`` is gone, even in the middle of a long invocation.

    A closed stdin ends the process between invocations; a handler busy for minutes
    would otherwise outlive a killed ``infra dev`` until its timeout.
    """
    while True:
        time.sleep(1)
        if os.getppid() != parent:
            os._exit(1)


def main(argv: list[str]) -> int:
    source, handler = argv[0], argv[1]
    threading.Thread(target=_end_with_parent, args=(os.getppid(),), daemon=True).start()
    results = os.fdopen(int(os.environ["HARBOR_DEV_RESULT_FD"]), "w", buffering=1)
    sys.path.insert(0, source)
    if os.environ.get("HARBOR_DEV_FALLBACK_PATH"):
        sys.path.append(os.environ["HARBOR_DEV_FALLBACK_PATH"])
    # Lambda's Python runtime logs through the root logger at the level the handler sets.
    logging.basicConfig(format="[%(levelname)s] %(message)s", stream=sys.stderr, level=logging.WARNING)
    module_name, _, function_name = handler.rpartition(".")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except Exception as exc:  # an import error is the function's init error, as on Lambda
        traceback.print_exc()
        results.write(json.dumps({"ready": False, "error": _error(exc)}) + "\n")
        return 1
    results.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        context = Context(request["requestId"], request["deadlineMs"])
        try:
            value = function(request["event"], context)
            answer = {"ok": True, "result": value}
            text = json.dumps(answer, default=str)
        except Exception as exc:
            traceback.print_exc()
            text = json.dumps({"ok": False, "error": _error(exc)})
        sys.stdout.flush()
        sys.stderr.flush()
        results.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
