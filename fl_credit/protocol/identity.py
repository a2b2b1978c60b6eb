"""Where each bank's secure-aggregation identity and the consortium roster live.

Every bank signs its key advertisements with a long-term Ed25519 identity and checks its
peers' against the roster (``strategies.secagg.identity``). Files:

- ``<bank>.identity.json``: the bank's private identity (mode 0600), kept by that bank only;
- ``consortium.json``: the public roster (every bank's name, verification key and
  registered weight), held by every bank and by the coordinator.

The simulation writes fresh ones per run next to the bank files (:func:`write_identities`);
``python -m fl_credit.export_banks`` writes them next to the exported bank files, and
``python -m fl_credit.certs --bank-identities`` issues them on their own.

A bank finds them (:func:`identity_provider`) from its node config: ``identity-key`` and
``consortium`` paths if given; else next to its ``data-path`` (``bank_0.csv`` ->
``bank_0.identity.json`` and ``consortium.json`` in the same folder); in the simulation,
in the bank folder, by partition id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from flwr.app import Context

from fl_credit.config.errors import DataError
from strategies.secagg import (
    Consortium,
    Identity,
    IdentityError,
    IdentityProvider,
    generate_identity,
    load_consortium,
    load_identity,
    make_consortium,
    save_consortium,
    save_identity,
)

IDENTITY_SUFFIX = ".identity.json"
CONSORTIUM_FILE = "consortium.json"
IDENTITY_KEY = "identity-key"
CONSORTIUM_KEY = "consortium"


def identity_path(folder: Path, bank: str) -> Path:
    """``folder/<bank>.identity.json``."""
    return Path(folder) / f"{bank}{IDENTITY_SUFFIX}"


def write_identities(
    folder: Path, banks: Iterable[str], weights: Mapping[str, float] | None = None
) -> Consortium:
    """Issue a fresh identity per bank into ``folder`` and write the roster next to them.

    Parameters
    ----------
    folder : pathlib.Path
        Destination (created if needed).
    banks : Iterable[str]
        Bank names (the bank files' stems, e.g. ``bank_0``).
    weights : Mapping[str, float], optional
        Registered public weight of each bank (e.g. its training row count); default 1.

    Returns
    -------
    Consortium
        The roster written to ``folder/consortium.json``.
    """
    identities = [generate_identity(name) for name in banks]
    for ident in identities:
        save_identity(ident, identity_path(folder, ident.name))
    consortium = make_consortium(identities, weights)
    save_consortium(consortium, Path(folder) / CONSORTIUM_FILE)
    return consortium


def distribute_identities(
    folder: Path,
    banks: Iterable[str],
    weights: Mapping[str, float] | None = None,
    source: Path | None = None,
) -> Consortium:
    """Put each bank's identity and the roster (with ``weights``) into ``folder``.

    With ``source`` (a folder from ``python -m fl_credit.certs --bank-identities``), its
    identities are used and its roster is rewritten with ``weights``; else fresh ones are
    issued (:func:`write_identities`).
    """
    banks = list(banks)
    if source is None:
        return write_identities(folder, banks, weights)
    try:
        issued = load_consortium(Path(source) / CONSORTIUM_FILE)
        identities = [load_identity(identity_path(source, name)) for name in banks]
    except IdentityError as err:
        raise DataError(str(err)) from None
    for ident in identities:
        if issued.members[ident.name].public_key != ident.public_key:
            raise DataError(f"{ident.name}: identity does not match the roster in {source}")
        if Path(source).resolve() != Path(folder).resolve():
            save_identity(ident, identity_path(folder, ident.name))
    consortium = make_consortium(identities, weights)
    save_consortium(consortium, Path(folder) / CONSORTIUM_FILE)
    return consortium


def read_consortium(path: Path) -> Consortium:
    """The roster at ``path``; a missing or bad file is a :class:`DataError` (one line)."""
    try:
        return load_consortium(path)
    except IdentityError as err:
        raise DataError(str(err)) from None


def identity_provider(bank_dir: str | Path | None = None) -> IdentityProvider:
    """``context -> (identity, roster)`` for this bank (see the module docstring).

    Parameters
    ----------
    bank_dir : str or pathlib.Path, optional
        Simulation: the folder with ``bank_<partition id>.identity.json`` and the roster.
    """

    def provide(context: Context) -> tuple[Identity, Consortium]:
        cfg = context.node_config
        if IDENTITY_KEY in cfg or "data-path" in cfg:
            data = Path(str(cfg["data-path"])) if "data-path" in cfg else None
            key = (
                Path(str(cfg[IDENTITY_KEY]))
                if IDENTITY_KEY in cfg
                else identity_path(data.parent, data.stem)  # type: ignore[union-attr]
            )
            roster = (
                Path(str(cfg[CONSORTIUM_KEY]))
                if CONSORTIUM_KEY in cfg
                else (data or key).parent / CONSORTIUM_FILE
            )
        elif bank_dir and "partition-id" in cfg:
            key = identity_path(Path(bank_dir), f"bank_{int(cfg['partition-id'])}")
            roster = Path(bank_dir) / CONSORTIUM_FILE
        else:
            raise IdentityError(
                f"this SuperNode has no {IDENTITY_KEY} (or data-path) in its --node-config"
            )
        return load_identity(key), load_consortium(roster)

    return provide
