"""settings.py is the one declaration of every setting: config.ini, the README and both
commands follow it, and values are read in one order."""

import re
from pathlib import Path

import jinja2
import pytest

from taichu_runtime.settings import (
    OPTIONS,
    RESOURCES,
    SettingsError,
    _convert,
    load_resources,
    load_settings,
    read_config,
)

REPO = Path(__file__).resolve().parents[2]


def rendered_config(tmp_path) -> Path:
    template = (REPO / "templates" / "app" / "config.ini.jinja").read_text()
    text = jinja2.Template(template).render(
        http_port=8080, grpc_port=8081, model_name=""
    )
    path = tmp_path / "config.ini"
    path.write_text(text)
    return path


def test_config_ini_lists_every_declared_key_with_its_default(tmp_path):
    parser = read_config(rendered_config(tmp_path))
    written = {(s, k) for s in parser.sections() for k in parser[s]}
    declared = {(o.section, o.key) for o in (*OPTIONS, *RESOURCES)}
    assert written == declared
    for option in (*OPTIONS, *RESOURCES):
        raw = parser.get(option.section, option.key)
        if option.type is str:
            assert raw == option.default, option.key
        else:
            assert _convert(option, raw, "config.ini") == option.default, option.key


def test_the_readme_table_lists_every_setting_with_its_env_and_flag():
    readme = (REPO / "README.md").read_text()
    rows = re.findall(r"^\| (\w+) \| (\w+) \| `(\w+)` \| `(--[\w-]+)` \|", readme, re.M)
    table = {(section, key): (env, flag) for section, key, env, flag in rows}
    assert set(table) == {(o.section, o.key) for o in OPTIONS}
    for option in OPTIONS:
        assert table[(option.section, option.key)] == (option.env, option.flags[0])
    resources = set(re.findall(r"^\| resources \| (\w+) \|", readme, re.M))
    assert resources == {o.key for o in RESOURCES}


def test_a_flag_beats_the_environment_which_beats_the_file(tmp_path, monkeypatch):
    config = tmp_path / "config.ini"
    config.write_text("[server]\nhttp_port = 1001\ngrpc_port = 1002\nworkers = 3\n")
    argv = ["--config", str(config)]
    environ = {"TAICHU_HTTP_PORT": "2001", "TAICHU_GRPC_PORT": "2002"}
    from_file = load_settings(argv, environ={})
    from_env = load_settings(argv, environ=environ)
    from_flag = load_settings([*argv, "--http_port", "3001"], environ=environ)
    assert (from_file.http_port, from_file.workers) == (1001, 3)
    assert (from_env.http_port, from_env.grpc_port) == (2001, 2002)
    assert (from_flag.http_port, from_flag.grpc_port) == (3001, 2002)
    monkeypatch.chdir(tmp_path / "..")  # no config.ini here: the defaults
    assert load_settings([], environ={}).http_port == 8080


@pytest.mark.parametrize(
    "text, message",
    [
        ("[server]\nworkers = many\n", "[server] workers: 'many' is not a valid int"),
        ("[limits]\nmax_qps = -1\n", "must not be negative"),
        ("[server]\nmax_worker_memory = 4GB\n", "'4GB' is not a valid int"),
        ("[metrics]\nenabled = maybe\n", "is not true or false"),
        ("[server]\nhttp_port = 9\ngrpc_port = 9\n", "are both 9"),
        (
            "[server]\nlog_level = verbose\n",
            "config.ini [server] log_level: 'verbose' is not one of debug, info, "
            "warning, error",
        ),
    ],
)
def test_bad_values_name_the_file_key_and_value(tmp_path, text, message):
    config = tmp_path / "config.ini"
    config.write_text(text)
    with pytest.raises(SettingsError) as caught:
        load_settings(["--config", str(config)], environ={})
    assert message in str(caught.value)


def test_a_config_file_named_on_the_command_line_must_exist(tmp_path):
    missing = tmp_path / "nowhere.ini"
    with pytest.raises(SettingsError, match="--config .*nowhere.ini: no such file"):
        load_settings(["--config", str(missing)], environ={})


def test_a_config_file_that_is_not_text_is_named(tmp_path):
    config = tmp_path / "config.ini"
    config.write_bytes(b"\xcc\xff")
    with pytest.raises(SettingsError, match="config.ini: not UTF-8 text"):
        load_settings(["--config", str(config)], environ={})


@pytest.mark.parametrize(
    "text, message",
    [
        ("cpu = -1", "is not a CPU amount"),
        ("memory = 4000", "is not an amount with a unit"),
        ("memory = lots", "is not an amount with a unit"),
        ("min_replicas = 5\nmax_replicas = 2", "min_replicas is above max_replicas"),
    ],
)
def test_resources_are_checked(tmp_path, text, message):
    config = tmp_path / "config.ini"
    config.write_text(f"[resources]\n{text}\n")
    with pytest.raises(SettingsError) as caught:
        load_resources(config)
    assert message in str(caught.value)
    config.write_text("[resources]\ncpu = 500m\nmemory = 4Gi\n")
    assert load_resources(config)["memory"] == "4Gi"


def test_log_level_is_taken_in_any_case(tmp_path):
    settings = load_settings(["--log-level", "WARNING"], environ={})
    assert settings.log_level == "warning"


def test_2x_keys_are_read_as_the_keys_of_today_which_win_over_them(tmp_path, caplog):
    config = tmp_path / "config.ini"
    config.write_text(
        "[server]\ninstances_num = 3\ngrpc_only = true\n"
        "[rate-limiter]\nmax_concurrent_requests = 4\n"
    )
    settings = load_settings(["--config", str(config)], environ={})
    assert (settings.workers, settings.max_concurrent_requests) == (3, 4)
    said = caplog.text
    assert (
        "[server] instances_num is the taichu-serve 2.x name of [server] workers"
        in said
    )
    assert (
        "[rate-limiter] max_concurrent_requests is the taichu-serve 2.x name of "
        "[limits] max_concurrent_requests" in said
    )
    assert (
        "[server] grpc_only (taichu-serve 2.x) is ignored: both ports always serve"
        in said
    )
    config.write_text("[server]\nworkers = 2\ninstances_num = 5\n")
    assert load_settings(["--config", str(config)], environ={}).workers == 2


def test_help_lists_each_flag_once_and_the_2x_spelling_still_works(capsys):
    with pytest.raises(SystemExit):
        load_settings(["--help"], environ={})
    text = capsys.readouterr().out
    assert "--http-port" in text and "--http_port" not in text
    assert load_settings(["--http_port", "1234"], environ={}).http_port == 1234
