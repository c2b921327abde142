"""symphony_ipc's synchronous API against real extension processes (supervisor_test_extension)."""

import json
import os
import signal

import numpy as np
import pytest

from conftest import bus_config, manifest, need_module

ipc = need_module()


@pytest.fixture
def bus():
    b = ipc.IPCBus(bus_config())
    yield b
    b.close()


def events_until(bus, pred, limit=200):
    seen = []
    for _ in range(limit):
        e = bus.wait_event(30.0)
        assert e is not None, f"no event; seen {seen}"
        seen.append(e)
        if pred(e):
            return seen
    raise AssertionError(f"never matched; seen {seen}")


def test_spawn_request_figures_stop(bus):
    assert bus.spawn_extension(manifest("echo", "--label", "blue")) == "echo"
    assert json.loads(bus.send_message("echo", "ping", {"x": 1})) == {"x": 1}
    who = json.loads(bus.send_message("echo", "whoami"))
    assert who["label"] == "blue"
    (fig,) = bus.figures("echo")
    assert fig["state"] == "HEALTHY" and fig["pid"] == who["pid"] and fig["route"] == "echo/0"
    states = [e["state"] for e in bus.poll_events() if e["kind"] == "lifecycle"]
    assert states[:4] == ["CREATED", "STARTING", "RUNNING", "HEALTHY"]
    bus.stop_extension("echo")
    events_until(bus, lambda e: e.get("state") == "TERMINATED")
    assert bus.figures("echo")[0]["state"] == "TERMINATED"
    with pytest.raises(ipc.SymphonyError) as e:
        bus.send_message("echo", "ping", {}, timeout=1.0)
    assert e.value.code == "unavailable"


def test_unknown_extension_and_bad_manifest_are_clear_errors(bus):
    with pytest.raises(ipc.SymphonyError) as e:
        bus.send_message("nobody", "ping")
    assert e.value.code == "not_found"
    bad = manifest("bad")
    bad["restart"] = {"policy": "sometimes"}
    with pytest.raises(ValueError, match="restart.policy"):
        bus.spawn_extension(bad)
    with pytest.raises(ValueError, match="unknown key"):
        ipc.IPCBus({"bus": "x", "colour": "red"})


def test_kill_restarts_and_events_say_why(bus):
    bus.spawn_extension(manifest("victim"))
    pid = bus.figures("victim")[0]["pid"]
    bus.poll_events()
    os.kill(pid, signal.SIGKILL)
    seen = events_until(bus, lambda e: e["kind"] == "lifecycle" and e["state"] == "HEALTHY")
    crashed = [e for e in seen if e.get("state") == "CRASHED"]
    assert crashed and "killed by signal 9" in crashed[0]["reason"]
    assert bus.figures("victim")[0]["pid"] != pid
    assert bus.counters()["events_dropped"] == 0


def test_publish_take_zero_copy(bus):
    sub = bus.subscribe("py/bytes", depth=8)
    pub = bus.advertise("py/bytes")
    assert pub.publish(b"hello") is True
    assert pub.publish(bytearray(b"world!")) is True
    with sub.take() as s:
        view = memoryview(s)
        assert view.readonly and bytes(view) == b"hello" and s.exports == 1
        with pytest.raises(TypeError):
            view[0] = 0
        view.release()
        assert s.exports == 0
    assert not s.held
    with pytest.raises(BufferError):
        memoryview(s)  # released: its memory is the ring's again
    with sub.take() as s:
        assert s.tobytes() == b"world!"
    assert sub.take() is None
    # a loan: written in place, published at the end of the with block
    with pub.loan(4) as loan:
        m = memoryview(loan)
        m[:] = b"abcd"
        m.release()
    with sub.take() as s:
        assert bytes(memoryview(s)) == b"abcd"
    topics = {t["name"]: t for t in bus.topics()}
    assert topics["py/bytes"]["publishers"][0]["published"] == 3
    assert topics["py/bytes"]["subscribers"][0]["delivered"] == 3


def test_leaving_with_while_a_view_lives_raises_buffer_error(bus):
    sub = bus.subscribe("py/life")
    pub = bus.advertise("py/life")
    pub.publish(b"x" * 16)
    pub.publish(b"y" * 16)
    view = None
    with pytest.raises(BufferError, match="still exported"):
        with sub.take() as s:
            view = memoryview(s)
    # still held: the bytes are still the sample's, and the next take is refused
    assert s.held and bytes(view) == b"x" * 16
    with pytest.raises(BufferError, match="still held"):
        sub.take()
    view.release()  # the last view goes: the sample goes back to the ring
    assert not s.held and not sub.holding
    with sub.take() as s2:
        arr = np.frombuffer(s2, dtype=np.uint8)
        assert arr.sum() == ord("y") * 16 and not arr.flags.writeable
        with pytest.raises(BufferError):
            s2.release()
        del arr
    # loans: publishing while a writable view lives is refused the same way
    with pytest.raises(BufferError, match="still exported"):
        with pub.loan(8) as loan:
            w = memoryview(loan)
    w[:] = b"12345678"
    w.release()  # published now
    with sub.take() as s3:
        assert s3.tobytes() == b"12345678"


def test_typed_topic_numpy_view(bus):
    reading = np.dtype([("seq", "<u8"), ("celsius", "<f8")])
    sub = bus.subscribe("py/typed", type="plant.Reading", size=reading.itemsize)
    pub = bus.advertise("py/typed", type="plant.Reading", size=reading.itemsize)
    with pub.loan(reading.itemsize) as loan:
        a = np.frombuffer(loan, dtype=reading)
        a[0] = (7, 21.5)
        del a
    with sub.take() as s:
        r = np.frombuffer(s, dtype=reading)
        assert r[0]["seq"] == 7 and r[0]["celsius"] == 21.5
        del r
    with pytest.raises(ipc.SymphonyError) as e:
        bus.subscribe("py/typed", type="other.Type", size=reading.itemsize)
    assert e.value.code == "type_mismatch"


def test_full_and_oversize(bus):
    sub = bus.subscribe("py/full", depth=2, max_payload=64)
    pub = bus.advertise("py/full", max_payload=64)
    with pytest.raises(ValueError, match="max_payload"):
        pub.publish(b"z" * 65)
    results = [pub.publish(b"a") for _ in range(8)]
    assert results[:2] == [True, True] and results[-1] is False  # a block subscriber is full
    assert pub.counters()["full"] >= 1
    del sub
