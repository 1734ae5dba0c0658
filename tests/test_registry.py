"""Finding implementations by entry point, module:Class and file.py:Class."""

from pathlib import Path

import pytest

from perfsuite.core import registry
from perfsuite.core.errors import UsageError

FIXTURES = Path(__file__).parent / "fixtures" / "test_impls.py"


def test_builtins_are_entry_points():
    points = registry.builtin()
    assert {"idiomatic", "store"} <= set(points)
    assert registry.load_class("store").__name__ == "Store"


def test_module_class_spec():
    (spec,) = registry.resolve(["perfsuite.impls.store:Store"])
    assert spec.name == "store" and spec.unavailable_reason is None


def test_old_module_class_spec_of_a_builtin_still_works():
    (spec,) = registry.resolve(["impls.store:Store"])
    assert spec.cls is registry.load_class("store") and spec.name == "store"


def test_file_class_spec():
    (spec,) = registry.resolve([f"{FIXTURES}:SleepInBackward"])
    assert spec.name == "sleepy-backward"
    assert spec.cls.sleep_in == "backward"


@pytest.mark.parametrize(
    "spec,message",
    [
        ("nonsense", "unknown implementation"),
        ("no.such.module:Thing", "cannot import module no.such.module"),
        ("perfsuite.impls.store:Missing", "has no class Missing"),
        ("perfsuite.impls.store:", "expected a name, module:Class or path/to/file.py:Class"),
        (":Store", "expected a name"),
        ("does/not/exist.py:Thing", "file does/not/exist.py does not exist"),
        (f"{FIXTURES}:NotAnImpl", "not a perfsuite implementation (missing methods predict, batches"),
        ("perfsuite.impls.store:torch", "not a perfsuite implementation"),
    ],
)
def test_bad_specs_are_usage_errors(spec, message):
    with pytest.raises(UsageError) as info:
        registry.resolve([spec])
    assert message in str(info.value)
    assert str(info.value).startswith("--impls ")


def test_duplicate_names_rejected():
    with pytest.raises(UsageError, match="named more than once"):
        registry.resolve(["store", "perfsuite.impls.store:Store"])


def test_parse_list():
    assert registry.parse_list(" store, idiomatic ,") == ["store", "idiomatic"]
    with pytest.raises(UsageError):
        registry.parse_list(" , ")
