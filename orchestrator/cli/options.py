"""Options `run` and `up` share: one flag per setting of the config's table."""

from __future__ import annotations

import argparse
from typing import Any

from orchestrator.config import SETTINGS, SETTINGS_BY_NAME, OrchestratorConfig, flag

EPILOG = """\
exit codes: CMD's status · 2 bad option/setting or missing prerequisite · 3 the stack did not
start · 4 CMD passed, teardown failed · 5 a stack service exited during the run · 126/127 CMD
not executable/not found · 128+N signal N.
settings: CLI flag > environment > [tool.ci-stack] in pyproject.toml > default."""

# How a default reads in --help where its value alone would not say it.
_DEFAULT_TEXT = {
    "seed": "off",
    "pg_bindir": "the pgserver wheel's",
    "retries": "0, 2 when CI is set",
    "fail_on_flaky": "off",
    "quarantine": "none",
    "history": ".ci-stack/history under the project root; off to keep none",
}


def setting_type(name: str) -> Any:
    """An argparse `type` parsing the setting `name` as the config does."""
    parse = SETTINGS_BY_NAME[name].parse

    def convert(raw: str) -> Any:
        try:
            return parse(raw)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = name  # argparse names the type in its messages
    return convert


def setting_help(name: str, default: object) -> str:
    setting = SETTINGS_BY_NAME[name]
    return f"{setting.help} (env {setting.env}; default: {default})"


def add_stack_options(parser: argparse.ArgumentParser) -> None:
    """One option per setting that has a flag, from the config's table."""
    defaults = OrchestratorConfig()
    for setting in SETTINGS:
        if setting.flag is None:
            continue
        default = _DEFAULT_TEXT.get(setting.name, getattr(defaults, setting.name))
        how: dict[str, Any] = (
            {"action": "store_const", "const": True}
            if setting.parse is flag
            else {"type": setting_type(setting.name)}
        )
        parser.add_argument(
            setting.flag, default=None, help=setting_help(setting.name, default), **how
        )


def stack_config(args: argparse.Namespace) -> OrchestratorConfig:
    """The settings: these flags over the environment over pyproject.toml over defaults."""
    flags = {name: getattr(args, name, None) for name in SETTINGS_BY_NAME}
    return OrchestratorConfig.load(flags)
