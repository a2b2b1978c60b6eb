"""Bank identities and the roster: files, verification, and how fl_credit provisions them."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from flwr.app import Context, RecordDict

from fl_credit.protocol import identity as bank_identity
from strategies.secagg.identity import (
    Consortium,
    IdentityError,
    Member,
    check_identity,
    generate_identity,
    load_consortium,
    load_identity,
    make_consortium,
    save_consortium,
    save_identity,
)


def _context(node_config: dict) -> Context:
    return Context(run_id=1, node_id=7, node_config=node_config, state=RecordDict(), run_config={})


def test_identity_and_roster_roundtrip(tmp_path: Path) -> None:
    a, b = generate_identity("bank_a"), generate_identity("bank_b")
    roster = make_consortium([a, b], {"bank_a": 120.0})
    path = save_identity(a, tmp_path / "a.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = load_identity(path)
    assert again.name == "bank_a" and again.public_key == a.public_key
    save_consortium(roster, tmp_path / "roster.json")
    loaded = load_consortium(tmp_path / "roster.json")
    assert loaded.weight("bank_a") == 120.0 and loaded.weight("bank_b") == 1.0
    assert "private" not in (tmp_path / "roster.json").read_text()
    sig = again.sign(b"hello")
    assert loaded.verify("bank_a", sig, b"hello")
    assert not loaded.verify("bank_b", sig, b"hello")  # another bank's key
    assert not loaded.verify("bank_a", sig, b"hellO")
    assert not loaded.verify("bank_c", sig, b"hello")  # not a member
    check_identity(again, loaded)
    with pytest.raises(IdentityError, match="does not match"):
        check_identity(generate_identity("bank_a"), loaded)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not valid JSON"),
        ('{"banks": {}}', "no banks"),
        ('{"banks": {"x": {"public_key": "abcd"}}}', "32 bytes"),
        ('{"banks": {"x": {"public_key": "' + "00" * 32 + '", "weight": -1}}}', "positive"),
    ],
)
def test_bad_roster_is_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "roster.json"
    path.write_text(content)
    with pytest.raises(IdentityError, match=message):
        load_consortium(path)


def test_duplicate_names_and_bad_weights_are_refused() -> None:
    a = generate_identity("bank_a")
    with pytest.raises(IdentityError, match="twice"):
        make_consortium([a, generate_identity("bank_a")])
    with pytest.raises(IdentityError, match="finite"):
        Consortium({"x": Member(a.public_key, float("nan"))})


def test_simulation_provider_finds_each_partitions_identity(tmp_path: Path) -> None:
    roster = bank_identity.write_identities(tmp_path, ["bank_0", "bank_1"], {"bank_1": 7})
    provide = bank_identity.identity_provider(tmp_path)
    ident, got = provide(_context({"partition-id": 1}))
    assert ident.name == "bank_1" and got.weight("bank_1") == 7
    assert got.members == roster.members


def test_deployment_provider_uses_node_config_or_the_data_folder(tmp_path: Path) -> None:
    bank_identity.write_identities(tmp_path, ["bank_0", "bank_1"])
    provide = bank_identity.identity_provider()
    ident, _ = provide(_context({"data-path": str(tmp_path / "bank_0.csv")}))
    assert ident.name == "bank_0"
    explicit = {
        "identity-key": str(tmp_path / "bank_1.identity.json"),
        "consortium": str(tmp_path / "consortium.json"),
    }
    assert provide(_context(explicit))[0].name == "bank_1"
    with pytest.raises(IdentityError, match="identity-key"):
        provide(_context({"partition-id": 0}))  # a simulated node without a bank folder


def test_certs_issues_identities_and_export_distributes_them(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fl_credit.certs",
            "--out",
            str(certs),
            "--bank-identities",
            "bank_0",
            "bank_1",
            "bank_2",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    issued = load_consortium(certs / "consortium.json")
    assert issued.names == ["bank_0", "bank_1", "bank_2"]
    out = tmp_path / "banks"
    roster = bank_identity.distribute_identities(
        out, ["bank_0", "bank_1", "bank_2"], {"bank_0": 10, "bank_1": 20, "bank_2": 30}, certs
    )
    assert [roster.weight(n) for n in roster.names] == [10, 20, 30]
    for name in roster.names:  # the issued keys, now next to the bank files
        assert load_identity(out / f"{name}.identity.json").public_key == (
            issued.members[name].public_key
        )
    assert json.loads((out / "consortium.json").read_text())["banks"]["bank_2"]["weight"] == 30
