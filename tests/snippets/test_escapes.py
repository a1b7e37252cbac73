"""The published RestrictedPython escapes and the classic Python sandbox escapes all fail.

Each case is the heart of a known technique; the assertion is that the snippet ends in an error
(refused at compile time or at run time) and that nothing it could reach leaks into the result.
"""

from __future__ import annotations

import pytest

from .support import error_of, one, run_inline

HANDLE = "def handle(item):\n    {}\n"


def body(code: str) -> str:
    return HANDLE.format(code)


# Each escape, as the line(s) that would reach the interpreter if the sandbox let it.
ESCAPES = {
    # class-hierarchy walks to object.__subclasses__ (and the loaders, os._wrap_close... there)
    "subclasses": body("return ().__class__.__bases__[0].__subclasses__()"),
    "subclasses-getattr": body("return getattr(getattr((), '__class__'), '__base__')"),
    "mro-method": body("return int.mro()"),
    "mro-getattr": body("return getattr(int, 'mro')()"),
    "type-builtin": body("return type(1)"),
    "object-builtin": body("return object"),
    "reduce-ex": body("return (1).__reduce_ex__(2)"),
    "reduce-getattr": body("return getattr(1, '__reduce_ex__')(2)"),
    # introspection builtins
    "vars": body("return vars()"),
    "globals": body("return globals()"),
    "locals": body("return locals()"),
    "dir": body("return dir()"),
    "builtins-name": body("return __builtins__"),
    "id": body("return id(item)"),
    # code execution and files
    "import-dunder": body("return __import__('os')"),
    "import-os": "import os\ndef handle(item):\n    return os.getcwd()\n",
    "import-sys": "import sys\ndef handle(item):\n    return 1\n",
    "import-subprocess": "import subprocess\ndef handle(item):\n    return 1\n",
    "import-relative": "from . import x\ndef handle(item):\n    return 1\n",
    "exec": body("return exec('1')"),
    "eval": body("return eval('1')"),
    "compile": body("return compile('1', 'x', 'eval')"),
    "open": body("return open('/etc/passwd').read()"),
    "breakpoint": body("return breakpoint()"),
    # a module's private parts and submodules, through the proxy
    "module-loader": "import math\ndef handle(item):\n    return math.__loader__\n",
    "module-loader-getattr": "import math\ndef handle(item):\n"
    "    return getattr(math, '__loader__')\n",
    "module-dict": "import math\ndef handle(item):\n    return getattr(math, '__dict__')\n",
    "submodule-attr": "import json\ndef handle(item):\n    return json.decoder\n",
    "submodule-from": "from json import decoder\ndef handle(item):\n    return 1\n",
    "submodule-from-abc": "from collections import abc\ndef handle(item):\n    return 1\n",
    "submodule-dotted": "import os.path\ndef handle(item):\n    return 1\n",
    "function-globals": body("return getattr(handle, '__globals__')"),
    "function-code": body("return getattr(handle, '__code__')"),
    "stdlib-function-globals": "import json\ndef handle(item):\n"
    "    return getattr(json.loads, '__globals__')\n",
    # generators and frames (GHSA-wqc8-x2pr-7jqh: generator gi_frame)
    "gi-frame": "def g():\n    yield 1\ndef handle(item):\n    return g().gi_frame.f_back\n",
    "gi-frame-getattr": "def g():\n    yield 1\ndef handle(item):\n"
    "    return getattr(g(), 'gi_frame')\n",
    "gi-code": "def g():\n    yield 1\ndef handle(item):\n    return getattr(g(), 'gi_code')\n",
    "f-globals-getattr": body("return getattr(item, 'f_globals')"),
    # exceptions' tracebacks and frames
    "traceback": body(
        "try:\n        1 / 0\n    except Exception as e:\n        return e.__traceback__.tb_frame"
    ),
    "traceback-getattr": body(
        "try:\n        1 / 0\n    except Exception as e:\n"
        "        return getattr(e, '__traceback__')"
    ),
    "tb-frame-getattr": body(
        "try:\n        1 / 0\n    except Exception as e:\n        return getattr(e, 'tb_frame')"
    ),
    # str.format / format-string attribute access (the published format advisories)
    "format-attr": body("return '{0.__class__}'.format(item)"),
    "format-attr-plain": body("return '{0.real}'.format(1)"),
    "format-index": body("return '{0[0]}'.format([1])"),
    "format-map-attr": body("return '{a.__class__}'.format_map({'a': 1})"),
    "format-unbound": body("return str.format('{0.__class__}', 1)"),
    "format-getattr": body("return getattr('{0.__class__}', 'format')(1)"),
    "fstring-attr": body("return f'{item.__class__}'"),
    "fstring-spec-attr": body("return f'{1:{item.__class__}}'"),
    "string-formatter": "import string\ndef handle(item):\n"
    "    return string.Formatter().get_field('0.__class__', [1], {})\n",
    "string-template": "import string\ndef handle(item):\n    return string.Template\n",
    # try/except* (ExceptionGroup): refused by RestrictedPython
    "except-star": body("try:\n        pass\n    except* ValueError:\n        pass"),
    "exception-group": body("return ExceptionGroup"),
    # GHSA-ffg3-p8fm-mjx2: a positional-only parameter shadowing a guard hook
    "posonly-shadow-getattr": "def f(_getattr_, /):\n    return _getattr_\n"
    "def handle(item):\n    return f(1)\n",
    "posonly-shadow-write": "def f(_write_, /):\n    return 1\ndef handle(item):\n    return 1\n",
    "kwonly-shadow": "def f(*, _getattr_=None):\n    return 1\ndef handle(item):\n    return 1\n",
    "lambda-shadow": "f = lambda _getattr_: 1\ndef handle(item):\n    return 1\n",
    # the sandbox's own helpers cannot be named
    "helper-name": body("return _tick_"),
    "helper-mul": body("return _mul_(1, 2)"),
    # writing into shared objects
    "write-module": "import json\njson.dumps = None\ndef handle(item):\n    return 1\n",
    "setattr-module": "import json\ndef handle(item):\n    setattr(json, 'dumps', None)\n",
    "write-builtin-func": body("len.x = 1"),
    "metaclass": "class M(type):\n    pass\nclass A(metaclass=M):\n    pass\n"
    "def handle(item):\n    return 1\n",
    "dunder-method-getitem": "class A:\n    def __getitem__(self, k):\n        return k\n"
    "def handle(item):\n    return A()[1]\n",
    "async": "async def handle(item):\n    return 1\n",
    "nonlocal": "def handle(item):\n    x = 1\n    def f():\n        nonlocal x\n    return 1\n",
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_escape_fails(name: str) -> None:
    error = error_of(ESCAPES[name], 1)
    assert error["kind"] in ("snippet-rejected", "task-failed", "snippet-budget"), error
    # Nothing of the peer's internals leaks: no file paths, no frames but the snippet's own.
    text = error["message"] + (error.get("traceback") or "")
    assert "site-packages" not in text and "/disruptor/" not in text and '.py"' not in text
    for line in (error.get("traceback") or "").splitlines():
        assert not line.startswith("  File ") or '"<snippet ' in line


def test_module_proxy_is_read_only_and_not_shared() -> None:
    first = run_inline(
        "import math\ntry:\n    math.pi = 3\nexcept Exception:\n    pass\n"
        "def handle(item):\n    return math.pi\n"
    )
    assert first[0]["value"] == pytest.approx(3.141592653589793)


def test_rebinding_a_builtin_stays_in_its_run() -> None:
    assert one("len = lambda x: 42\ndef handle(item):\n    return len(item)\n", [1])["value"] == 42
    assert one("def handle(item):\n    return len(item)\n", [1, 2])["value"] == 2


def test_a_run_cannot_see_the_previous_runs_globals() -> None:
    one("secret = 'left-behind'\ndef handle(item):\n    return 1\n")
    error = error_of("def handle(item):\n    return secret\n")
    assert error["type"] == "NameError"


def test_format_without_attribute_access_still_works() -> None:
    source = body("return '{} and {name}'.format(item, name='x') + f'{item:>4}'")
    assert one(source, 7)["value"] == "7 and x   7"


def test_getattr_on_ordinary_attributes_works() -> None:
    source = (
        "import collections\ndef handle(item):\n"
        "    return getattr(collections.Counter(item), 'total')()\n"
    )
    assert one(source, "aab")["value"] == 3


@pytest.mark.parametrize(
    "exc", ["SystemExit", "KeyboardInterrupt", "BaseException", "GeneratorExit", "StopIteration"]
)
def test_base_exceptions_are_contained(exc: str) -> None:
    replies = run_inline(body(f"if item:\n        raise {exc}('x')\n    return 'ok'"), [1, 0])
    assert replies[0]["error"]["type"] == exc
    assert replies[1]["value"] == "ok"
