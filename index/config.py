"""Settings: the documented defaults in `config/defaults.toml`, overridden by the environment.

Precedence, lowest first: `config/defaults.toml`, a TOML file named in `ARTICLEBOT_CONFIG`,
then one environment variable per key (`ARTICLEBOT_DATA_DIR`, `ARTICLEBOT_MIN_CONFIDENCE`, ...).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

DEFAULTS_FILE = Path(__file__).resolve().parent.parent / "config" / "defaults.toml"
ENV_PREFIX = "ARTICLEBOT_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_CHOICES = {"ranking": ("contextual", "plain"), "encoder": ("fp32", "int8", "pytorch")}
_KINDS = {"bool": "true or false", "int": "a whole number", "float": "a number"}


@dataclass(frozen=True)
class Settings:
    """Everything that can be configured; see `config/defaults.toml` for what each key means."""

    data_dir: Path
    database_url: str
    model_cache_dir: Path
    model: str
    encoder: str
    compact_encodings: bool
    query_prompt: str
    document_prompt: str
    spacy_pipeline_de: str
    spacy_pipeline_en: str
    ranking: str
    max_quotes: int
    max_candidates: int
    join_referring_sentences: bool
    min_confidence: float
    min_article_words: int
    max_article_chars: int
    max_sentence_chars: int
    max_articles_per_chat: int
    max_chars_per_chat: int
    max_adds_per_user_per_hour: int
    fetch_timeout_seconds: float
    dns_timeout_seconds: float
    fetch_max_bytes: int
    fetch_max_redirects: int
    user_agent: str
    allow_private_urls: bool
    webhook_url: str
    listen: str
    port: int
    workers: int
    feed_check_seconds: float
    feed_interval_minutes: float
    feed_items_per_poll: int
    feed_max_per_chat: int
    feed_max_items: int
    feed_report_after_failures: int
    feed_pause_after_failures: int

    @property
    def database_path(self) -> Path:
        return self.data_dir / "library.sqlite3"

    @property
    def vectors_dir(self) -> Path:
        return self.data_dir / "vectors"

    def spacy_pipeline(self, language: str) -> str:
        """The trained spaCy pipeline configured for `language`, or "" for the rule-based one."""
        return str(getattr(self, f"spacy_pipeline_{language}", ""))

    def with_overrides(self, **values: Any) -> Settings:
        return replace(self, **{k: _convert(k, v) for k, v in values.items()})


def _convert(key: str, value: Any) -> Any:
    """Turn a TOML or environment value into the field's type."""
    kind = {f.name: f.type for f in fields(Settings)}[key]
    if kind == "Path":
        return Path(str(value)).expanduser()
    try:
        if kind == "bool":
            if not isinstance(value, str):
                return bool(value)
            if value.strip().lower() not in _TRUE | _FALSE:
                raise ValueError(value)
            return value.strip().lower() in _TRUE
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
    except ValueError:
        raise ValueError(f"The setting {key} must be {_KINDS[kind]}, not {value!r}.") from None
    if key in _CHOICES and str(value) not in _CHOICES[key]:
        choices = " or ".join(repr(c) for c in _CHOICES[key])
        raise ValueError(f"The setting {key} must be {choices}, not {value!r}.")
    return str(value)


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read the defaults, then the optional user TOML file, then the environment."""
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = tomllib.loads(DEFAULTS_FILE.read_text(encoding="utf-8"))
    user_file = environ.get(f"{ENV_PREFIX}CONFIG")
    if user_file:
        path = Path(user_file).expanduser()
        try:
            values.update(tomllib.loads(path.read_text(encoding="utf-8")))
        except OSError as error:
            raise ValueError(
                f"{ENV_PREFIX}CONFIG names {path}, which cannot be read ({error.strerror})."
            ) from None
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"{path} is not valid TOML: {error}") from None
    names = {f.name for f in fields(Settings)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"Unknown configuration keys: {', '.join(sorted(unknown))}")
    for name in names:
        env_value = environ.get(ENV_PREFIX + name.upper())
        if env_value is not None:
            values[name] = env_value
    return Settings(**{name: _convert(name, value) for name, value in values.items()})
