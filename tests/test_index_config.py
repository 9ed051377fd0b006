"""Configuration: the documented defaults, environment overrides, a user TOML file, and clear
refusals of keys and values that cannot be right."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from index.config import DEFAULTS_FILE, load_settings


def test_defaults_load_as_documented() -> None:
    """Without any environment, the settings are exactly the values in config/defaults.toml,
    in their proper types (paths expanded)."""
    documented = tomllib.loads(DEFAULTS_FILE.read_text(encoding="utf-8"))
    settings = load_settings({})
    for key, value in documented.items():
        actual = getattr(settings, key)
        if isinstance(actual, Path):
            assert actual == Path(value).expanduser(), key
        else:
            assert actual == value and type(actual) is type(value), key
    assert settings.allow_private_urls is False
    assert settings.model_cache_dir == Path.home() / ".cache" / "articlebot" / "models"
    assert settings.database_path == Path("data") / "library.sqlite3"


def test_environment_overrides(clean_environ: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """ARTICLEBOT_<KEY> variables of the process environment override the defaults."""
    clean_environ.setenv("ARTICLEBOT_DATA_DIR", str(tmp_path / "library"))
    clean_environ.setenv("ARTICLEBOT_MIN_CONFIDENCE", "0.72")
    clean_environ.setenv("ARTICLEBOT_ALLOW_PRIVATE_URLS", "1")
    clean_environ.setenv("ARTICLEBOT_MAX_QUOTES", "5")
    settings = load_settings()
    assert settings.data_dir == tmp_path / "library"
    assert settings.database_path == tmp_path / "library" / "library.sqlite3"
    assert settings.min_confidence == 0.72
    assert settings.allow_private_urls is True
    assert settings.max_quotes == 5


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", True),
        ("true", True),
        ("Yes", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("no", False),
        ("off", False),
        ("", False),
    ],
)
def test_boolean_values(value: str, expected: bool) -> None:
    """Usual spellings of yes and no are understood for switches."""
    assert load_settings({"ARTICLEBOT_ALLOW_PRIVATE_URLS": value}).allow_private_urls is expected


def test_home_directory_in_paths_is_expanded() -> None:
    """A path starting with ~ means the home directory."""
    settings = load_settings({"ARTICLEBOT_DATA_DIR": "~/articlebot-data"})
    assert settings.data_dir == Path.home() / "articlebot-data"


def test_user_toml_file_between_defaults_and_environment(tmp_path: Path) -> None:
    """A TOML file named in ARTICLEBOT_CONFIG overrides the defaults; the environment overrides
    the file."""
    config = tmp_path / "articlebot.toml"
    config.write_text('min_confidence = 0.3\nmax_quotes = 4\nmodel = "intfloat/e5-base"\n')
    settings = load_settings({"ARTICLEBOT_CONFIG": str(config), "ARTICLEBOT_MAX_QUOTES": "2"})
    assert settings.min_confidence == 0.3
    assert settings.model == "intfloat/e5-base"
    assert settings.max_quotes == 2


def test_unknown_keys_in_user_toml_are_refused(tmp_path: Path) -> None:
    """A misspelt key in the user's TOML file is an error naming the key, not silently ignored."""
    config = tmp_path / "articlebot.toml"
    config.write_text("min_confidance = 0.3\nmax_quotes = 4\n")
    with pytest.raises(ValueError, match="min_confidance"):
        load_settings({"ARTICLEBOT_CONFIG": str(config)})


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ARTICLEBOT_MAX_QUOTES", "three"),
        ("ARTICLEBOT_MIN_CONFIDENCE", "high"),
        ("ARTICLEBOT_ALLOW_PRIVATE_URLS", "maybe"),
    ],
)
def test_values_of_the_wrong_kind_name_the_variable(variable: str, value: str) -> None:
    """A value that does not fit its setting is refused with a message naming the setting,
    rather than a bare conversion error (or, for switches, silently read as "no")."""
    with pytest.raises(ValueError, match=variable.removeprefix("ARTICLEBOT_").lower()):
        load_settings({variable: value})


def test_missing_user_toml_file_is_named(tmp_path: Path) -> None:
    """ARTICLEBOT_CONFIG naming a file that does not exist gives an error naming the file."""
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(ValueError, match=r"nowhere\.toml"):
        load_settings({"ARTICLEBOT_CONFIG": str(missing)})
