"""creatorcommerce.process.PerProcess: one value per process, made again after a fork."""

from __future__ import annotations

import os

from creatorcommerce.process import PerProcess


def test_one_value_per_process_made_on_first_use_and_again_when_stale():
    made = []

    def make():
        made.append(object())
        return made[-1]

    closed = set()
    values = PerProcess(make, stale=lambda value: id(value) in closed)
    assert values.current() is None and made == []
    first = values.get()
    assert values.get() is first and values.current() is first and len(made) == 1
    closed.add(id(first))
    assert values.get() is not first and len(made) == 2


def test_a_forked_child_makes_its_own():
    values = PerProcess(lambda: [os.getpid()])
    parent = values.get()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: it inherited the parent's value but must not use it
        try:
            mine = values.get()
            fresh = values.current() is mine and mine == [os.getpid()] and mine is not parent
            os.write(write, b"ok" if fresh else b"no")
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 2) == b"ok"
    assert values.get() is parent
