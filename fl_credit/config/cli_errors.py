"""One line for the errors Hydra raises before our code runs, with the closest key or option.

Hydra composes the config before ``python -m fl_credit.simulate`` gets control; its errors
(a misspelt key, an unknown group or option, a key of another option of a group, an override
it cannot parse, a run folder it cannot create) would end in several lines and exit code 1.
:func:`explain` turns each into one line naming the problem and, where one exists, the
closest key or option in ``conf/`` (``difflib``), or the group option that has the key
("use dp=opacus").
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HYDRA_KEYS = (
    "hydra.run.dir",
    "hydra.sweep.dir",
    "hydra.sweep.subdir",
    "hydra.verbose",
    "hydra.job.chdir",
    "hydra.mode",
)
"""Hydra's own keys people set on the command line (suggestions for misspellings)."""

CUTOFF = 0.6
OPTION_CUTOFF = 0.5


@dataclass(frozen=True)
class Catalogue:
    """What ``conf/`` offers: top-level keys, groups with their options' keys, defaults."""

    keys: frozenset[str]
    groups: Mapping[str, Mapping[str, frozenset[str]]]
    defaults: Mapping[str, str]

    def keys_with(self, choices: Mapping[str, str]) -> set[str]:
        """Every settable key when each group takes its option in ``choices`` (or default)."""
        keys = set(self.keys) | set(HYDRA_KEYS)
        for group, options in self.groups.items():
            option = choices.get(group, self.defaults.get(group))
            keys |= {f"{group}.{key}" for key in options.get(option, ())}
        return keys


def _flat(tree: Any, prefix: str = "") -> set[str]:
    if not isinstance(tree, dict):
        return set()
    keys: set[str] = set()
    for key, value in tree.items():
        name = f"{prefix}{key}"
        keys.add(name)
        keys |= _flat(value, f"{name}.")
    return keys


def _load(path: Path) -> dict:
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def catalogue(conf: Path) -> Catalogue:
    """Read ``conf/`` (plain YAML, no Hydra) and the generated nodes of
    :mod:`fl_credit.config.store` into a :class:`Catalogue`."""
    top = _load(conf / "config.yaml")
    defaults: dict[str, str] = {}
    for entry in top.get("defaults") or []:
        if isinstance(entry, dict):
            defaults.update({str(k): str(v) for k, v in entry.items()})
    from fl_credit.config.store import base_tree

    given = {k: v for k, v in top.items() if k not in ("defaults", "hydra")}
    keys = _flat({**base_tree(), **given})
    groups = {
        folder.name: {
            option.stem: frozenset(_flat(_load(option)) - {"defaults"})
            for option in sorted(folder.glob("*.yaml"))
        }
        for folder in sorted(conf.iterdir())
        if folder.is_dir()
    }
    from fl_credit.config.store import DEFENCE_GROUP, defence_presets

    stored = {name: frozenset() for name in defence_presets()}  # they set no key of their own
    groups[DEFENCE_GROUP] = {**stored, **groups.get(DEFENCE_GROUP, {})}
    return Catalogue(frozenset(keys), groups, defaults)


def group_choices(overrides: Sequence[str], cat: Catalogue) -> dict[str, str]:
    """``group=option`` overrides on the command line (first value of a sweep)."""
    choices = {}
    for text in overrides:
        key, sep, value = text.lstrip("+~").partition("=")
        if sep and key in cat.groups:
            choices[key] = value.split(",")[0].strip()
    return choices


def _closest(word: str, candidates: Sequence[str], cutoff: float = CUTOFF) -> str | None:
    found = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=cutoff)
    return found[0] if found else None


def _value_of(key: str, overrides: Sequence[str]) -> str:
    for text in overrides:
        name, sep, value = text.lstrip("+~").partition("=")
        if sep and name == key:
            return value
    return "..."


def swept_groups(overrides: Sequence[str], cat: Catalogue) -> list[str]:
    """The ``group=a,b`` overrides that sweep over a config group's options."""
    swept = []
    for text in overrides:
        key, sep, value = text.partition("=")
        if sep and key.lstrip("+~") in cat.groups and "," in value:
            swept.append(text)
    return swept


def _forced_in_sweep(key: str, overrides: Sequence[str], cat: Catalogue) -> str | None:
    """The line for ``key``, a setting of some options of its group, set beside a sweep over
    that group's options (directly or through ``+defence``): Hydra composes the sweep's base
    configuration without the swept choices, where the key does not exist."""
    group = key.partition(".")[0]
    swept = swept_groups(overrides, cat)
    chosen = group_choices([o for o in overrides if o not in swept], cat)
    if not swept or group not in cat.groups or group in chosen:
        return None
    current = cat.defaults.get(group, "?")
    return (
        f"{key} is not a setting of {group}={current}, the configuration Hydra composes before "
        f"sweeping over {swept[0]}: write ++{key}={_value_of(key, overrides)} to set it in "
        "every swept run"
    )


def unknown_key(key: str, overrides: Sequence[str], cat: Catalogue) -> str:
    """The line for an override of a key the composed config does not have."""
    choices = group_choices(overrides, cat)
    group, _, rest = key.partition(".")
    forced = _forced_in_sweep(key, overrides, cat)
    if forced:
        return forced
    if group in cat.groups and rest:
        current = choices.get(group, cat.defaults.get(group, "?"))
        having = [o for o, keys in cat.groups[group].items() if rest in keys and o != current]
        if having:
            having.sort(key=lambda o: (-len(cat.groups[group][o]), o))
            others = ", ".join(f"{group}={o}" for o in having[1:])
            also = f" (or {others})" if others else ""
            return f"{key} is not a setting of {group}={current}: use {group}={having[0]}{also}"
    candidates = cat.keys_with(choices) | set(cat.groups)
    match = _closest(key, candidates)
    if match in cat.groups and match not in cat.keys:
        return f"unknown config key '{key}'; did you mean {match}={_value_of(key, overrides)}?"
    if match:
        return f"unknown config key '{key}'; did you mean {match}?"
    return f"unknown config key '{key}'"


def unknown_option(group: str, option: str, cat: Catalogue) -> str:
    """The line for ``group=option`` when ``conf/<group>/<option>.yaml`` does not exist."""
    options = sorted(cat.groups.get(group, {}))
    if not options:
        match = _closest(group, list(cat.groups))
        hint = f"; did you mean {match}={option}?" if match else ""
        return f"unknown config group '{group}'{hint}"
    match = _closest(option, options, OPTION_CUTOFF)
    plus = "" if group in cat.defaults else "+"
    hint = f"; did you mean {plus}{group}={match}?" if match else ""
    return f"no option '{option}' for {group} (options: {', '.join(options)}){hint}"


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def explain(err: BaseException, overrides: Sequence[str], conf: Path) -> str:
    """One line for an error raised by Hydra (or the OS) before the task ran.

    Parameters
    ----------
    err : BaseException
        What Hydra raised (with ``HYDRA_FULL_ERROR`` set, so it reaches the caller).
    overrides : sequence of str
        The command-line overrides.
    conf : pathlib.Path
        The ``conf/`` folder, for suggestions.

    Returns
    -------
    str
        The message, without the ``error:`` prefix.
    """
    from hydra.errors import HydraException, MissingConfigException, OverrideParseException

    text = str(err)
    if isinstance(err, OSError) and not isinstance(err, HydraException):
        where = err.filename or "the run folder"
        reason = err.strerror or type(err).__name__
        return (
            f"cannot create {where}: {reason}; set hydra.run.dir (hydra.sweep.dir with -m) "
            "to a folder you can write"
        )
    if isinstance(err, MissingConfigException) or "Could not find '" in text:
        found = re.search(r"Could not (?:find|load) '([^']+)/([^'/]+)'", text)
        if found:
            return unknown_option(found.group(1), found.group(2), catalogue(conf))
    found = re.search(r"Could not override '([^']+)'", text)
    if found:
        return unknown_key(found.group(1), overrides, catalogue(conf))
    found = re.search(r"Could not append to config. An item is already at '([^']+)'", text)
    if found:
        key = found.group(1)
        return f"{key} already exists: set it with {key}=... (without +)"
    if isinstance(err, OverrideParseException):
        return f"cannot parse the overrides: {_first_line(err)}"
    if text.startswith("Ambiguous value for argument"):  # a sweep in a multirun config whose
        cat = catalogue(conf)  # base composition failed: name the key that made it fail
        for override in overrides:
            key = override.lstrip("+~").partition("=")[0]
            forced = _forced_in_sweep(key, overrides, cat) if "." in key else None
            if forced:
                return forced
    if isinstance(err, HydraException):
        return f"config: {_first_line(err)}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[-1]}" if lines else type(err).__name__
