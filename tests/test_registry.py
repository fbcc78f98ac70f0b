"""Handlers, their stages and harnesses, on their own."""

from __future__ import annotations

import asyncio
import sys
import types

import pytest

from runner import Handler, Job, Registry
from runner.registry import load


def make_job(**args) -> Job:
    return Job(name="j", type="t", graph="g", namespace="n", args=args, attempt=1, runner="r")


def test_a_plain_function_is_the_process_stage():
    registry = Registry({"double": lambda job: job.args["x"] * 2})
    assert registry["double"](make_job(x=21)) == 42


def test_stages_run_in_order_once_each():
    calls = []
    handler = Handler(
        pre_process=lambda job: calls.append("pre") or job,
        process=lambda job: calls.append("process") or 1,
        post_process=lambda job, result: calls.append("post") or result + 1,
    )
    assert handler(make_job()) == 2
    assert calls == ["pre", "process", "post"]


def tracing(name: str, calls: list[str]):
    def wrapper(stage):
        def wrapped(*args):
            calls.append(f"{name}>")
            out = stage(*args)
            calls.append(f"<{name}")
            return out
        return wrapped
    return wrapper


def test_harnesses_nest_with_the_last_applied_outermost_and_each_runs_once():
    calls: list[str] = []
    registry = Registry()

    @registry.handler("t")
    def process(job):
        calls.append("handler")
        return "done"

    registry.harness("process", tracing("inner", calls))
    registry.harness("process", tracing("outer", calls))
    assert registry["t"](make_job()) == "done"
    assert calls == ["outer>", "inner>", "handler", "<inner", "<outer"]


def test_a_harness_on_a_missing_stage_wraps_the_identity():
    calls: list[str] = []
    registry = Registry({"t": lambda job: job.args["v"]})
    registry.harness("pre_process", tracing("pre", calls))
    registry.harness("post_process", tracing("post", calls))
    assert registry["t"](make_job(v=7)) == 7
    assert calls == ["pre>", "<pre", "post>", "<post"]


def test_one_call_harnesses_every_handler_of_the_registry():
    calls: list[str] = []
    registry = Registry({"a": lambda job: "a", "b": lambda job: "b"})
    registry.harness("process", tracing("h", calls))
    assert [registry[t](make_job()) for t in ("a", "b")] == ["a", "b"]
    assert calls == ["h>", "<h", "h>", "<h"]


def test_an_async_process_stage_is_post_processed_after_it_is_awaited():
    async def process(job):
        return 20

    handler = Handler(process=process, post_process=lambda job, result: result + 1)
    assert asyncio.run(handler(make_job())) == 21


def test_a_type_is_registered_once():
    registry = Registry({"a": lambda job: 1})
    with pytest.raises(ValueError, match="a handler for job type 'a' is already registered"):
        registry.add("a", lambda job: 2)


def test_an_unknown_stage_is_refused():
    with pytest.raises(ValueError, match="unknown stage 'process_all'"):
        Registry({"a": lambda job: 1}).harness("process_all", lambda stage: stage)


def test_load_finds_a_registry_or_a_handlers_dict():
    module = types.ModuleType("fake_handlers")
    module.HANDLERS = {"x": lambda job: 1}
    sys.modules["fake_handlers"] = module
    try:
        assert list(load("fake_handlers")) == ["x"]
        with pytest.raises(LookupError, match="module 'fake_handlers' has no nope"):
            load("fake_handlers:nope")
    finally:
        del sys.modules["fake_handlers"]
    with pytest.raises(LookupError, match="cannot import handler module 'no_such_module'"):
        load("no_such_module")
