"""Write each bank's rows to its own file for the Deployment Engine, and print how to run them.

``python -m fl_credit.export_banks [--out DIR | out_dir=DIR] [options] [hydra overrides]``

The data are loaded and split exactly as ``python -m fl_credit.simulate`` does with the same
overrides (same ``conf/``, same seed), then written to ``DIR``:

- ``bank_<i>.csv``: one file per bank (its training and validation rows), for that bank's
  SuperNode (``--node-config 'data-path="DIR/bank_<i>.csv"'``);
- ``bank_<i>.identity.json``: that bank's secure-aggregation signing identity (private: give
  it to that bank only), and ``consortium.json``: the public roster of all banks' identities
  and registered weights (training row counts; public size bands under DP), for every bank
  and the coordinator
  (see :mod:`fl_credit.protocol.identity`); taken from ``--certs`` when that folder holds
  identities from ``python -m fl_credit.certs --bank-identities``, else issued here;
- ``test.csv`` and ``schema.json``: the coordinator's held-out test rows and the encoding;
- ``run_config.toml``: the run config for ``flwr run`` (the same overrides, the test file and
  the number of banks), so the ServerApp composes the very same experiment;
- ``env.sh``: the environment every Flower process and the ``flwr`` CLI need
  (``FLWR_HOME``, no telemetry, no update check), for ``source``;

and the ``flwr`` CLI's connection, ``[superlink.<connection>]``, into
``$FLWR_HOME/config.toml`` (``--flwr-home``, else ``$FLWR_HOME``, else ``DIR/flwr_home``):
a new file, or a section appended to an existing one, which is never rewritten; an
existing connection of the same name with other settings is refused.

It then prints the environment, the SuperLink, SuperNode and ``flwr run`` command lines.
With ``--certs`` the folder must hold what ``python -m fl_credit.certs`` writes (the CA, the
SuperLink's certificate and key, one ``supernode_<i>`` key pair per bank). Bad input ends
with one line naming the problem and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fl_credit.config.compose import compose_experiment
from fl_credit.config.errors import ConfigError, FlCreditError
from fl_credit.data.prepare import Prepared, prepare, write_bank_files
from fl_credit.protocol.identity import CONSORTIUM_FILE, IDENTITY_SUFFIX, distribute_identities
from fl_credit.protocol.public_weights import registered_weights
from fl_credit.run.files import write_atomic

RUN_CONFIG = "run_config.toml"
ENV_FILE = "env.sh"
FLWR_CONFIG = "config.toml"
OUT_ALIAS = "out_dir="
TLS_FILES = ("ca.crt", "superlink.crt", "superlink.key")
QUIET_FLOWER_ENV = {"FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}
"""Keep every Flower process off the network: no telemetry, no version check."""


@dataclass(frozen=True)
class ExportOptions:
    """Where to write and what the printed commands should point at."""

    out: Path
    overrides: tuple[str, ...]
    superlink: str = "127.0.0.1:8000"
    certs: Path | None = None
    first_port: int = 9094
    connection: str = "fl-credit"
    flwr_home: Path | None = None


@dataclass(frozen=True)
class ExportResult:
    """Files written by :func:`export`."""

    bank_files: dict[str, Path]
    test_file: Path
    schema_file: Path
    run_config: Path
    prepared: Prepared
    consortium: Path | None = None


class _Parser(argparse.ArgumentParser):
    """Argument parser whose errors are one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def parse_args(argv: Sequence[str]) -> ExportOptions:
    """Options and Hydra overrides from the command line (``out_dir=DIR`` = ``--out DIR``)."""
    parser = _Parser(
        prog="python -m fl_credit.export_banks",
        description="Write one data file per bank plus the test rows, and print the commands "
        "that start a SuperLink and one SuperNode per bank.",
    )
    parser.add_argument("--out", type=Path, help="destination folder (or out_dir=DIR)")
    parser.add_argument(
        "--superlink", default="127.0.0.1:8000", help="SuperLink address banks dial (host:port)"
    )
    parser.add_argument(
        "--certs",
        type=Path,
        help="folder from `python -m fl_credit.certs` (TLS + node auth); omit for --insecure",
    )
    parser.add_argument(
        "--first-port", type=int, default=9094, help="ClientAppIo port of bank 0 (+1 per bank)"
    )
    parser.add_argument(
        "--connection", default="fl-credit", help="connection name in $FLWR_HOME/config.toml"
    )
    parser.add_argument(
        "--flwr-home",
        type=Path,
        help="where the flwr CLI's config.toml goes (default: $FLWR_HOME, else DIR/flwr_home)",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for fl_credit.simulate")
    args = parser.parse_args(list(argv))
    overrides = [o for o in args.overrides if not o.startswith(OUT_ALIAS)]
    aliases = [o[len(OUT_ALIAS) :] for o in args.overrides if o.startswith(OUT_ALIAS)]
    out = args.out if args.out is not None else (Path(aliases[-1]) if aliases else None)
    if out is None or not str(out):
        parser.error("give the destination folder with --out DIR or out_dir=DIR")
    if not 1 <= args.first_port <= 65535:
        parser.error(f"--first-port must be a port number, got {args.first_port}")
    out = out.expanduser().resolve()
    home = args.flwr_home or (
        Path(os.environ["FLWR_HOME"]) if os.environ.get("FLWR_HOME") else None
    )
    return ExportOptions(
        out=out,
        overrides=tuple(overrides),
        superlink=args.superlink,
        certs=args.certs.expanduser().resolve() if args.certs else None,
        first_port=args.first_port,
        connection=args.connection,
        flwr_home=(home or out / "flwr_home").expanduser().resolve(),
    )


def check_certs(certs: Path | None, num_banks: int | None = None) -> None:
    """With ``--certs``: the folder holds the CA, the SuperLink's files and a key pair per bank.

    Raises
    ------
    ConfigError
        Naming the folder or the first missing file and the command that makes it.
    """
    if certs is None:
        return
    make = f"python -m fl_credit.certs --out {shlex.quote(str(certs))} --supernode-keys N"
    if not certs.is_dir():
        raise ConfigError(f"--certs {certs}: no such folder; make it first with: {make}")
    wanted = list(TLS_FILES)
    if num_banks is not None:
        wanted += [f"supernode_{i}{end}" for i in range(num_banks) for end in ("", ".pub")]
    missing = [name for name in wanted if not (certs / name).is_file()]
    if missing:
        raise ConfigError(
            f"--certs {certs}: {missing[0]} is missing ({len(missing)} files in all); make "
            f"them with: {make.replace(' N', f' {num_banks or 1}')}"
        )


def _toml_string(value: str) -> str:
    """A TOML basic string; Flower's ``--node-config`` parser cannot take ``"`` inside one."""
    if '"' in value or "\\" in value:
        raise ConfigError(f"paths and overrides must not contain '\"' or '\\\\': {value}")
    return f'"{value}"'


def run_config_text(overrides: Sequence[str], schema_file: Path, num_banks: int, out: Path) -> str:
    """The ``flwr run --run-config`` file: same overrides, data dictionary, bank count, output.

    No test rows: the coordinator evaluates federatedly (each bank on its own test rows). Add
    ``test-path = ".../test.csv"`` for a research comparison on held-out rows.
    """
    lines = [
        "# flwr run . <connection> --run-config <this file> --stream",
        f"config-overrides = {_toml_string(shlex.join(overrides))}",
        f"schema-path = {_toml_string(str(schema_file))}",
        f"num-banks = {num_banks}",
        f"output-dir = {_toml_string(str(out / 'server_run'))}",
    ]
    return "\n".join(lines) + "\n"


def export(options: ExportOptions) -> ExportResult:
    """Split the configured data into banks and write their files into ``options.out``.

    Parameters
    ----------
    options : ExportOptions
        Destination and Hydra overrides.

    Returns
    -------
    ExportResult
        The written files and the split itself.

    Raises
    ------
    FlCreditError
        On a bad override, unusable data or a partition that leaves a bank without rows.
    """
    check_certs(options.certs)
    cfg, _ = compose_experiment(options.overrides)
    prepared = prepare(cfg)
    check_certs(options.certs, len(prepared.banks))
    out = options.out
    try:
        paths = write_bank_files(prepared, out, suffix=".csv")
    except OSError as err:
        raise FlCreditError(f"cannot write bank files into {out}: {err.strerror}") from None
    rows = {name: info["rows"] for name, info in prepared.bank_info.items()}
    try:
        source = (
            options.certs if options.certs and (options.certs / CONSORTIUM_FILE).is_file() else None
        )
        weights = registered_weights(cfg.dp.mode, rows)
        distribute_identities(out, [p.stem for p in paths], weights, source)
    except OSError as err:
        raise FlCreditError(f"cannot write identities into {out}: {err.strerror}") from None
    test_file = out / "test.csv"
    config_text = run_config_text(options.overrides, out / "schema.json", len(paths), out)
    run_config = write_atomic(out / RUN_CONFIG, config_text)
    return ExportResult(
        bank_files={p.stem: p for p in paths},
        test_file=test_file,
        schema_file=out / "schema.json",
        run_config=run_config,
        prepared=prepared,
        consortium=out / CONSORTIUM_FILE,
    )


def connection_toml(options: ExportOptions) -> dict[str, object]:
    """The ``[superlink.<connection>]`` settings the ``flwr`` CLI needs."""
    section: dict[str, object] = {"address": options.superlink}
    if options.certs is None:
        section["insecure"] = True
    else:
        section["root-certificates"] = str(options.certs / "ca.crt")
    return section


def _toml_value(value: object) -> str:
    return "true" if value is True else _toml_string(str(value))


def write_flwr_config(options: ExportOptions) -> Path:
    """Add the connection to ``<flwr_home>/config.toml`` (created if missing, else appended).

    Raises
    ------
    ConfigError
        When the file is not valid TOML, or already holds this connection with other settings.
    """
    home = options.flwr_home or options.out / "flwr_home"
    path = home / FLWR_CONFIG
    wanted = connection_toml(options)
    name = options.connection
    table = "\n".join(
        [f"[superlink.{name}]", *(f"{k} = {_toml_value(v)}" for k, v in wanted.items())]
    )
    try:
        text = path.read_text() if path.is_file() else ""
        existing = tomllib.loads(text)
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"cannot read {path}: {err}") from None
    superlink = existing.get("superlink", {})
    if name in superlink:
        if superlink[name] == wanted:
            return path
        raise ConfigError(
            f"{path} already has [superlink.{name}] with other settings ({superlink[name]}); "
            "give another --connection NAME or --flwr-home DIR"
        )
    if not text:
        text = f'[superlink]\ndefault = "{name}"\n\n{table}\n'
    elif "superlink" not in existing:
        text = f'{text.rstrip()}\n\n[superlink]\ndefault = "{name}"\n\n{table}\n'
    else:
        text = f"{text.rstrip()}\n\n{table}\n"
    try:
        tomllib.loads(text)  # never leave a file the flwr CLI cannot read
    except tomllib.TOMLDecodeError:
        raise ConfigError(f"--connection {name!r} is not usable as a TOML key") from None
    try:
        return write_atomic(path, text)
    except OSError as err:
        raise ConfigError(f"cannot write {path}: {err.strerror}") from None


def environment(options: ExportOptions) -> dict[str, str]:
    """Variables for every Flower process and the ``flwr`` CLI, on every machine."""
    home = options.flwr_home or options.out / "flwr_home"
    return {"FLWR_HOME": str(home), **QUIET_FLOWER_ENV}


def environment_text(options: ExportOptions) -> str:
    """``export`` lines of :func:`environment` (written to ``env.sh``)."""
    lines = [f"export {k}={shlex.quote(v)}" for k, v in environment(options).items()]
    return "\n".join(lines) + "\n"


def superlink_command(options: ExportOptions) -> list[str]:
    """``flower-superlink`` for the coordinator (TLS + node auth when certs are given)."""
    host, _, port = options.superlink.rpartition(":")
    cmd = ["flower-superlink", "--disable-runtime-dependency-installation"]
    if options.certs is None:
        cmd.append("--insecure")
    else:
        cmd += [
            "--ssl-ca-certfile", str(options.certs / "ca.crt"),
            "--ssl-certfile", str(options.certs / "superlink.crt"),
            "--ssl-keyfile", str(options.certs / "superlink.key"),
            "--enable-supernode-auth",
        ]  # fmt: skip
    bind = "127.0.0.1" if host in ("127.0.0.1", "localhost") else "0.0.0.0"
    return [*cmd, "--host", bind, "--port", port or "8000"]


FAST_SUPERNODE = ["python", "-m", "fl_credit.supernode"]
"""Flower's SuperNode with warm ClientApps and prompt polling (:mod:`fl_credit.supernode`)."""


def supernode_command(
    options: ExportOptions,
    index: int,
    data_file: Path,
    *,
    stock: bool = False,
    floors: dict[str, object] | None = None,
) -> list[str]:
    """The SuperNode command of bank ``index`` reading ``data_file``:
    ``python -m fl_credit.supernode`` (``flower-supernode`` with ``stock``), same arguments.
    Its ``--node-config`` carries the floors of the exported configuration, updated by
    ``floors``."""
    cmd = [*(["flower-supernode"] if stock else FAST_SUPERNODE), "--superlink", options.superlink]
    if options.certs is None:
        cmd.append("--insecure")
    else:
        cmd += [
            "--root-certificates", str(options.certs / "ca.crt"),
            "--auth-supernode-private-key", str(options.certs / f"supernode_{index}"),
        ]  # fmt: skip
    entries = [f"data-path={_toml_string(str(data_file))}"]
    chosen = {**_floors(options), **(floors or {})}
    entries += [f"{key}={_toml_value(value)}" for key, value in chosen.items()]
    node_config = " ".join(entries)
    return [*cmd, "--port", str(options.first_port + index), "--node-config", node_config]


def _floors(options: ExportOptions) -> dict[str, object]:
    """The bank floors the exported configuration implies (:mod:`fl_credit.bank.floors`)."""
    from fl_credit.bank.floors import node_config_floors

    cfg, _ = compose_experiment(options.overrides)
    return node_config_floors(cfg)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return _toml_string(str(value))


def instructions(options: ExportOptions, result: ExportResult) -> str:
    """The commands to print after an export."""
    info = result.prepared.bank_info
    lines = [f"wrote {len(result.bank_files)} bank files, test rows and schema to {options.out}"]
    for name, path in result.bank_files.items():
        lines.append(f"  {name}: {info[name]['rows']} training rows -> {path}")
    lines.append(
        f"  each bank also needs its <bank>{IDENTITY_SUFFIX} (private) and "
        f"{CONSORTIUM_FILE} (public) next to its data file"
    )
    home = options.flwr_home or options.out / "flwr_home"
    lines += [
        f"connection '{options.connection}' for the flwr CLI in {home / FLWR_CONFIG}",
        "",
        f"# every terminal below (or: source {options.out / ENV_FILE})",
        *environment_text(options).splitlines(),
        "",
        "# coordinator: start the SuperLink",
        shlex.join(superlink_command(options)),
    ]
    if options.certs is not None:
        lines.append("# coordinator: register each bank's public key under its name (once)")
        for i, name in enumerate(result.bank_files):
            pub = str(options.certs / f"supernode_{i}.pub")
            register = ["flwr", "supernode", "register", pub, options.connection, "--name", name]
            lines.append(shlex.join(register))
    lines.append(
        "# each bank, in the project folder: start its SuperNode (Flower's flower-supernode "
        "with warm ClientApps; --stock for Flower's own)"
    )
    for i, path in enumerate(result.bank_files.values()):
        lines.append(shlex.join(supernode_command(options, i, path)))
    lines += [
        "# coordinator, in the project folder: submit the run (connection in "
        "$FLWR_HOME/config.toml), then check its status",
        shlex.join(["flwr", "run", ".", options.connection, "--run-config", str(result.run_config)])
        + " --stream",
        f"python -m fl_credit.deploy_status {options.connection} "
        f"--output-dir {shlex.quote(str(options.out / 'server_run'))}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit code."""
    options = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = export(options)
        write_flwr_config(options)
        write_atomic(options.out / ENV_FILE, environment_text(options))
    except FlCreditError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(instructions(options, result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
