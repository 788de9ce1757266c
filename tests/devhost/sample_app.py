"""A small FunctionApp used only by devhost's tests: one function per behaviour under test."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import defaultdict
from typing import Any

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

# What the triggers saw, by kind; appended from worker threads.
calls: defaultdict[str, list[Any]] = defaultdict(list)
_lock = threading.Lock()


def record(kind: str, value: Any) -> None:
    with _lock:
        calls[kind].append(value)


def as_json(data: Any, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(data), status_code=status, mimetype="application/json")


def seen(req: func.HttpRequest, name: str) -> func.HttpResponse:
    """Echo what the function received, tagged with its name."""
    return as_json(
        {
            "function": name,
            "route": dict(req.route_params),
            "params": dict(req.params),
            "url": req.url,
            "method": req.method,
        }
    )


@app.route(route="hello/{name}", methods=["GET"])
def hello(req: func.HttpRequest) -> func.HttpResponse:
    return seen(req, "hello")


@app.route(route="items/{id:int}", methods=["GET"])
def item_by_id(req: func.HttpRequest) -> func.HttpResponse:
    return seen(req, "item_by_id")


@app.route(route="opt/{opt?}", methods=["GET"])
def optional(req: func.HttpRequest) -> func.HttpResponse:
    return seen(req, "optional")


@app.route(route="files/{*rest}", methods=["GET"])
def files(req: func.HttpRequest) -> func.HttpResponse:
    return seen(req, "files")


# An overlapping pair: the host tries routes in function-name order, so "a_thing" shadows the literal route.
@app.route(route="things/{name}", methods=["GET"])
def a_thing(req: func.HttpRequest) -> func.HttpResponse:
    return seen(req, "a_thing")


@app.route(route="things/new", methods=["GET"])
def b_new_thing(req: func.HttpRequest) -> func.HttpResponse:
    return seen(req, "b_new_thing")


@app.route(route="echo", methods=["POST"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    resp = func.HttpResponse(
        req.get_body(),
        status_code=201,
        mimetype="application/octet-stream",
        headers={"X-Seen-Header": req.headers.get("x-test", ""), "X-Method": req.method},
    )
    resp.headers.add("Set-Cookie", "a=1")
    resp.headers.add("Set-Cookie", "b=2")
    return resp


@app.route(route="headers", methods=["GET"])
def headers(req: func.HttpRequest) -> func.HttpResponse:
    return as_json(dict(req.headers))


@app.route(route="text", methods=["GET"])
def text(req: func.HttpRequest) -> str:
    return "plain text"


@app.route(route="async/{name}", methods=["GET"])
async def async_hello(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    return as_json(
        {
            "name": req.route_params["name"],
            "loop": id(loop),
            "thread": threading.current_thread().name,
        }
    )


# No `methods`: the function takes every method, whatever its name.
@app.route(route="any")
def any_method(req: func.HttpRequest) -> func.HttpResponse:
    return seen(req, "any_method")


@app.route(route="boom", methods=["GET"])
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("boom")


@app.queue_trigger(arg_name="msg", queue_name="%SAMPLE_QUEUE%", connection="AzureWebJobsStorage")
def record_queue(msg: func.QueueMessage) -> None:
    record("queue", {"body": msg.get_body(), "dequeue_count": msg.dequeue_count, "id": msg.id})


@app.queue_trigger(
    arg_name="msg", queue_name="%SAMPLE_FAILING_QUEUE%", connection="AzureWebJobsStorage"
)
def always_fails(msg: func.QueueMessage) -> None:
    record("failing", msg.dequeue_count)
    raise RuntimeError("always fails")


@app.timer_trigger(arg_name="timer", schedule="*/1 * * * * *")
def tick(timer: func.TimerRequest) -> None:
    record("tick", timer.past_due)
