"""The reference Python client (vgi-rpc 0.52.2) calling the Rust `calculator` example worker.

The worker binary comes from ``VGI_EXAMPLE_WORKER`` (``tests/python_client.rs`` sets it);
each test spawns ``<worker> --worker`` through ``vgi_rpc.connect`` and checks typed results.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, ClassVar, Protocol

import pytest

from vgi_rpc import (
    AnnotatedBatch,
    ExchangeState,
    Level,
    Message,
    MethodType,
    ProducerState,
    RpcError,
    Stream,
    connect,
    describe_protocol,
    list_protocols,
    rpc_methods,
)
from vgi_rpc.rpc._protocol_hash import compute_protocol_hash


class Calculator(Protocol):
    """Mirror of the Rust ``Calculator`` trait in ``examples/shared/calculator.rs``."""

    protocol_name: ClassVar[str] = "Calculator"
    protocol_version: ClassVar[str] = "1.0.0"

    def add(self, a: float, b: float) -> float:
        """Add two numbers."""
        ...

    def divide(self, a: float, b: float) -> float:
        """Divide a by b; dividing by zero fails with a ValueError."""
        ...

    def greet(self, name: str, greeting: str = "Hello") -> str:
        """Greet name, logging the greeting too."""
        ...

    def countdown(self, n: int) -> Stream[ProducerState]:
        """Count down from n to 1, one row per tick."""
        ...

    def scale(self, factor: float) -> Stream[ExchangeState]:
        """Multiply the value column of every input batch by factor."""
        ...


def _worker_command() -> list[str]:
    worker = os.environ.get("VGI_EXAMPLE_WORKER")
    if not worker:
        pytest.fail("VGI_EXAMPLE_WORKER must name the built `calculator` example binary")
    if not os.access(worker, os.X_OK):
        pytest.fail(f"VGI_EXAMPLE_WORKER={worker!r} is not an executable file")
    return [worker, "--worker"]


@pytest.fixture
def logs() -> list[Message]:
    return []


@pytest.fixture
def calc(logs: list[Message]) -> Iterator[Any]:
    with connect(Calculator, _worker_command(), on_log=logs.append) as proxy:
        yield proxy


def test_add_returns_a_float(calc: Any) -> None:
    result = calc.add(a=2.0, b=3.0)
    assert isinstance(result, float)
    assert result == 5.0
    assert calc.add(a=-1.5, b=0.25) == -1.25


def test_greet_fills_the_default_and_delivers_the_log(calc: Any, logs: list[Message]) -> None:
    assert calc.greet(name="Ada") == "Hello, Ada!"
    assert [(m.level, m.message) for m in logs] == [(Level.INFO, "greeting Ada")]

    logs.clear()
    assert calc.greet(name="Bob", greeting="Howdy") == "Howdy, Bob!"
    assert [(m.level, m.message) for m in logs] == [(Level.INFO, "greeting Bob")]


def test_divide_by_zero_is_a_value_error_and_the_connection_survives(calc: Any) -> None:
    assert calc.divide(a=7.0, b=2.0) == 3.5
    with pytest.raises(RpcError) as raised:
        calc.divide(a=1.0, b=0.0)
    error = raised.value
    assert error.error_type == "ValueError"
    # As from a Python worker: the message is the exception's `Type: message` summary.
    assert error.error_message == "ValueError: division by zero"
    assert error.error_code == "UNKNOWN"
    assert error.remote_traceback != ""
    # An in-band error leaves the connection usable.
    assert calc.divide(a=9.0, b=3.0) == 3.0


def test_countdown_streams_one_row_per_tick(calc: Any) -> None:
    batches = list(calc.countdown(n=4))
    assert [b.batch.num_rows for b in batches] == [1, 1, 1, 1]
    assert [b.batch.column("value")[0].as_py() for b in batches] == [4, 3, 2, 1]
    assert str(batches[0].batch.schema.field("value").type) == "int64"
    assert list(calc.countdown(n=0)) == []
    # The connection is reusable after a finished stream.
    assert calc.add(a=1.0, b=1.0) == 2.0


def test_scale_multiplies_each_exchange(calc: Any) -> None:
    with calc.scale(factor=2.5) as session:
        first = session.exchange(AnnotatedBatch.from_pydict({"value": [1.0, 2.0, -4.0]}))
        assert first.batch.column("value").to_pylist() == [2.5, 5.0, -10.0]
        second = session.exchange(AnnotatedBatch.from_pydict({"value": [0.5]}))
        assert second.batch.column("value").to_pylist() == [1.25]
    assert calc.add(a=2.0, b=2.0) == 4.0


def test_reflection_describes_the_rust_protocol(calc: Any) -> None:
    hosted = list_protocols(calc)
    assert [p.name for p in hosted] == ["Calculator", "vgi_rpc.Reflection.v1"]
    assert hosted[0].version == "1.0.0"
    # The Rust trait and this Protocol class describe the same wire surface.
    expected_hash = compute_protocol_hash("Calculator", rpc_methods(Calculator))
    assert hosted[0].hash == expected_hash

    description = describe_protocol(calc, "Calculator")
    assert description.protocol_name == "Calculator"
    assert description.protocol_version == "1.0.0"
    assert description.protocol_hash == expected_hash
    methods = description.methods
    assert sorted(methods) == ["add", "countdown", "divide", "greet", "scale"]
    assert methods["add"].method_type == MethodType.UNARY
    assert methods["add"].has_return
    assert methods["add"].params_schema.names == ["a", "b"]
    assert str(methods["add"].result_schema.field("result").type) == "double"
    assert methods["greet"].params_schema.names == ["name", "greeting"]
    assert methods["countdown"].method_type == MethodType.STREAM
    assert methods["countdown"].is_exchange is False
    assert methods["scale"].method_type == MethodType.STREAM
    assert methods["scale"].is_exchange is True
