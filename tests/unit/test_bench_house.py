"""`bench.house` counts what the house review counts, on a source small enough to count by hand."""

from __future__ import annotations

from bench.house import count_resets, measure_source, names_thing, p90

SOURCE = '''\
import functools


@functools.cache
def settings() -> dict[str, str]:
    """Read once a process."""
    return {}


def handler(x: int) -> int:
    from json import dumps

    return len(dumps(x))
'''


def test_functions_lazy_imports_and_cached_singletons_are_counted() -> None:
    figures = measure_source("m.py", SOURCE)
    assert [(f.name, f.line, f.lines) for f in figures.functions] == [
        ("settings", 5, 3),
        ("handler", 10, 4),
    ]
    assert figures.lazy_imports == 1
    assert [(s.name, s.line) for s in figures.singletons] == [("settings", 5)]
    assert figures.memos == []
    assert (figures.lines, figures.filled_lines) == (13, 8)


def test_memos_constants_and_module_level_caches_are_told_apart() -> None:
    source = """\
import functools, weakref

_pools = weakref.WeakKeyDictionary()
_ORDER = {"a": 1}
_seen: list[str] = []
_CLIENT = None


class Keys:
    pass


_KEYS = Keys()


@functools.lru_cache(maxsize=8)
def read(path: str) -> bytes:
    return b""


@functools.cache
def document() -> str:
    return ""


def note(x: str) -> None:
    global _CLIENT
    _seen.append(x)
"""
    figures = measure_source("m.py", source)
    assert sorted(s.name for s in figures.singletons) == ["_CLIENT", "_KEYS", "_pools", "_seen"]
    assert sorted(m.name for m in figures.memos) == ["document", "read"]


def test_resets_in_tests_are_counted() -> None:
    source = "get_settings.cache_clear()\nauth._KEYS.clear()\nmonkeypatch.setattr(ssh, '_pools', {})\nd.clear()\n"
    assert count_resets(source, {"_KEYS", "_pools"}) == (1, 2)


def test_a_thing_is_named_by_a_constant_a_def_or_an_import() -> None:
    assert names_thing("NAMES = ('slurm', 'pbs')", {"pbs"})
    assert names_thing("from core.schedulers import pbs", {"pbs"})
    assert names_thing("def show_case(): pass", {"show_case"})
    assert not names_thing("pbs = 1", {"pbs"})


def test_p90_interpolates_as_the_review_did() -> None:
    assert p90(list(range(1, 11))) == 9.1
