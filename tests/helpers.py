"""Small helpers the tests share."""

import base64
import json
from pathlib import Path
from typing import Any


def queued_messages(var_dir: str | Path, queue: str = "sweepyard.test") -> list[dict[str, Any]]:
    """The training messages waiting in the embedded broker's folder, decoded: task name and run ids."""
    messages = []
    for path in sorted((Path(var_dir) / "broker" / "queue").glob(f"*.{queue}.msg")):
        raw = json.loads(path.read_text())
        args, _kwargs, _embed = json.loads(base64.b64decode(raw["body"]))
        messages.append(
            {"task": raw["headers"]["task"], "run_ids": args[0], "content_type": raw["content-type"]}
        )
    return messages
