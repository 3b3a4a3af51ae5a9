"""What `run --reload` watches (reload.py), and the one line a failed load is told in
(loader.in_brief)."""

from pathlib import Path

import pytest

from taichu_runtime.loader import in_brief
from taichu_runtime.reload import is_watched


@pytest.mark.parametrize(
    "path, watched",
    [
        ("customize_service.py", True),
        ("helpers/tokenizer.py", True),
        ("config.ini", True),
        ("requirements.txt", True),
        ("models/weights.py", False),
        ("taichu_runtime/server.py", False),
        ("tests/test_service.py", False),
        ("test/http_client.py", False),
        (".venv/lib/python3.11/site-packages/numpy/core.py", False),
        ("venv/lib/python3.11/site-packages/numpy/core.py", False),
        ("helpers/__pycache__/tokenizer.cpython-311.pyc", False),
        ("notes.txt", False),
        ("sub/config.ini", False),
    ],
)
def test_what_a_reload_follows(path, watched):
    assert is_watched(Path(path)) is watched


def test_a_failed_load_is_one_line_naming_the_project_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    service = tmp_path / "customize_service.py"
    service.write_text("def load():\n    return {}['weights']\n")
    code = compile(service.read_text(), str(service), "exec")
    scope: dict = {}
    exec(code, scope)
    with pytest.raises(KeyError) as raised:
        scope["load"]()
    assert (
        in_brief(raised.value) == "KeyError: 'weights' (customize_service.py, line 2)"
    )
    with pytest.raises(SyntaxError) as bad:
        compile("def broken(:\n", str(service), "exec")
    assert (
        in_brief(bad.value)
        == "SyntaxError: invalid syntax (customize_service.py, line 1)"
    )
