"""The platform's Settings as the stages' typed configs read them.

Each stage declares its own small config (``RegistryConfig``,
``IngestionConfig``, ``OllamaConfig``, ``AggregationConfig``) and its pure
functions take that, never the settings. A config's ``from_settings`` reads
the platform's :class:`~settings.Settings` with plain attribute access, which
the type checker follows; :func:`as_settings` lets it take a stand-in that
carries only some of the fields too (a test's ``SimpleNamespace``). Nothing
here imports a stage, so every stage may use it.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from settings import Settings


def as_settings(settings: object) -> Settings:
    """``settings`` itself if it is a Settings, else a Settings with the fields it carries.

    Each field the object has is validated as Settings would (a string API
    key becomes a ``SecretStr``); the others take Settings' defaults. Neither
    the environment nor a ``.env`` file is read, so the result depends on the
    object alone, as a test double expects.
    """
    if isinstance(settings, Settings):
        return settings
    present: dict[str, Any] = {
        name: TypeAdapter(info.annotation).validate_python(getattr(settings, name))
        for name, info in Settings.model_fields.items()
        if hasattr(settings, name)
    }
    return Settings.model_construct(**present)
