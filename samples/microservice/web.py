"""The web service: a Flask app that enqueues jobs by task name and reads their results.

    flask --app samples.microservice.web run --port 8000

It holds a Stem app with no tasks: ``enqueue("math.add", ...)`` names a task that only
the worker service defines. Endpoints:

- ``POST /jobs/<task>`` with ``{"args": [...], "kwargs": {...}}``: 202 and ``{"id": ...}``;
- ``GET /jobs/<id>?wait=<seconds>``: ``{"id", "state", "result"}`` (waits up to ``wait``
  seconds, at most 30, for the job to settle; a failed job answers with its ``error``;
  an unknown id is a 404).
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, abort, request

import stem
from stem import Stem
from stem.errors import UsageError

producer = Stem(namespace=os.environ.get("STEM_NAMESPACE", "stem"))
web = Flask(__name__)


@web.post("/jobs/<task>")
def enqueue(task: str) -> tuple[dict[str, Any], int]:
    body = request.get_json(silent=True) or {}
    args, kwargs = body.get("args", []), body.get("kwargs", {})
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        return {"error": "args must be a JSON array and kwargs a JSON object"}, 400
    try:
        handle = producer.enqueue(task, args, kwargs)
    except UsageError as exc:  # e.g. an invalid queue or option
        return {"error": str(exc)}, 400
    return {"id": handle.id}, 202


@web.get("/jobs/<job_id>")
def job(job_id: str) -> dict[str, Any]:
    wait_s = min(float(request.args.get("wait", "0")), 30.0)
    handle = producer.job(job_id)
    if handle.status() is None:
        abort(404)
    try:
        result = handle.result(timeout_s=wait_s) if wait_s > 0 else None
    except stem.ResultTimeout:
        result = None
    except stem.JobFailed as exc:
        return {"id": job_id, "state": "failed", "error": str(exc)}
    state = handle.status()
    return {"id": job_id, "state": state.value if state else None, "result": result}


app = web  # `flask --app samples.microservice.web` finds `app`
