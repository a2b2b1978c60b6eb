"""Write each bank's rows to its own file for the Deployment Engine, and print how to run them.

``python -m fl_credit.export_banks [--out DIR | out_dir=DIR] [options] [hydra overrides]``

The data are loaded and split exactly as ``python -m fl_credit.simulate`` does with the same
overrides (same ``conf/``, same seed), then written to ``DIR``:

- ``bank_<i>.csv``: one file per bank (its training and validation rows), for that bank's
  SuperNode (``--node-config 'data-path="DIR/bank_<i>.csv"'``);
- ``bank_<i>.identity.json``: that bank's secure-aggregation signing identity (private: give
  it to that bank only), and ``consortium.json``: the public roster of all banks' identities
  and registered weights (their training row counts), for every bank and the coordinator
  (see :mod:`fl_credit.bank_identity`); taken from ``--certs`` when that folder holds
  identities from ``python -m fl_credit.certs --bank-identities``, else issued here;
- ``test.csv`` and ``schema.json``: the coordinator's held-out test rows and the encoding;
- ``run_config.toml``: the run config for ``flwr run`` (the same overrides, the test file and
  the number of banks), so the ServerApp composes the very same experiment.

It then prints the SuperLink, SuperNode and ``flwr run`` command lines. Bad input ends with
one line naming the problem and exit code 2.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fl_credit.bank_identity import CONSORTIUM_FILE, IDENTITY_SUFFIX, distribute_identities
from fl_credit.data.prepare import Prepared, prepare, write_bank_files
from fl_credit.errors import ConfigError, FlCreditError
from fl_credit.hydra_compose import compose_experiment
from fl_credit.run_files import write_atomic

RUN_CONFIG = "run_config.toml"
OUT_ALIAS = "out_dir="


@dataclass(frozen=True)
class ExportOptions:
    """Where to write and what the printed commands should point at."""

    out: Path
    overrides: tuple[str, ...]
    superlink: str = "127.0.0.1:8000"
    certs: Path | None = None
    first_port: int = 9094
    connection: str = "fl-credit"


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
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for fl_credit.simulate")
    args = parser.parse_args(list(argv))
    overrides = [o for o in args.overrides if not o.startswith(OUT_ALIAS)]
    aliases = [o[len(OUT_ALIAS) :] for o in args.overrides if o.startswith(OUT_ALIAS)]
    out = args.out if args.out is not None else (Path(aliases[-1]) if aliases else None)
    if out is None or not str(out):
        parser.error("give the destination folder with --out DIR or out_dir=DIR")
    if not 1 <= args.first_port <= 65535:
        parser.error(f"--first-port must be a port number, got {args.first_port}")
    return ExportOptions(
        out=out.expanduser().resolve(),
        overrides=tuple(overrides),
        superlink=args.superlink,
        certs=args.certs.expanduser().resolve() if args.certs else None,
        first_port=args.first_port,
        connection=args.connection,
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
    cfg, _ = compose_experiment(options.overrides)
    prepared = prepare(cfg)
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
        distribute_identities(out, [p.stem for p in paths], rows, source)
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


def supernode_command(options: ExportOptions, index: int, data_file: Path) -> list[str]:
    """``flower-supernode`` for bank ``index`` reading ``data_file``."""
    cmd = ["flower-supernode", "--superlink", options.superlink]
    if options.certs is None:
        cmd.append("--insecure")
    else:
        cmd += [
            "--root-certificates", str(options.certs / "ca.crt"),
            "--auth-supernode-private-key", str(options.certs / f"supernode_{index}"),
        ]  # fmt: skip
    node_config = f"data-path={_toml_string(str(data_file))}"
    return [*cmd, "--port", str(options.first_port + index), "--node-config", node_config]


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
    lines += ["", "# coordinator: start the SuperLink", shlex.join(superlink_command(options))]
    if options.certs is not None:
        lines.append("# coordinator: register each bank's public key under its name (once)")
        for i, name in enumerate(result.bank_files):
            pub = str(options.certs / f"supernode_{i}.pub")
            register = ["flwr", "supernode", "register", pub, options.connection, "--name", name]
            lines.append(shlex.join(register))
    lines.append("# each bank: start its SuperNode")
    for i, path in enumerate(result.bank_files.values()):
        lines.append(shlex.join(supernode_command(options, i, path)))
    lines += [
        "# coordinator, in the project folder: submit the run (connection in "
        "$FLWR_HOME/config.toml), then check its status",
        shlex.join(["flwr", "run", ".", options.connection, "--run-config", str(result.run_config)])
        + " --stream",
        f"flwr list {options.connection}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit code."""
    options = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = export(options)
    except FlCreditError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(instructions(options, result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
