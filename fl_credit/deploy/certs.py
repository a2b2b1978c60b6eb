"""TLS certificates for a SuperLink and authentication keys for SuperNodes.

``python -m fl_credit.certs --out DIR [--host NAME ...] [--supernode-keys N]`` (coordinator)
writes:

- ``ca.crt`` / ``ca.key``: a local certificate authority. Every SuperNode and the ``flwr``
  CLI verify the SuperLink with ``ca.crt`` (``--root-certificates``, ``root-certificates``);
  keep ``ca.key`` offline.
- ``superlink.crt`` / ``superlink.key``: the SuperLink's certificate, valid for ``localhost``,
  ``127.0.0.1`` and every ``--host`` (the names or addresses banks dial).
- ``supernode_<i>`` / ``supernode_<i>.pub`` (with ``--supernode-keys N``): one EC P-384 key
  pair per bank in OpenSSH format. The bank keeps the private key
  (``flower-supernode --auth-supernode-private-key``); the coordinator registers the public key
  (``flwr supernode register supernode_<i>.pub <connection>``).

``python -m fl_credit.certs --out DIR --node-key NAME`` (a bank) writes only the key pair
``NAME`` / ``NAME.pub``, so the private key never leaves the bank.

``python -m fl_credit.certs --out DIR --bank-identities bank_0 bank_1 ...`` issues the banks'
secure-aggregation identities: ``<bank>.identity.json`` (Ed25519 signing key; give each to
its bank only) and ``consortium.json`` (the public roster every bank and the coordinator
hold). ``python -m fl_credit.export_banks --certs DIR`` then distributes them next to the
bank files, with the banks' registered weights (see :mod:`fl_credit.protocol.identity`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTS = ("localhost", "127.0.0.1")
VALID_DAYS = 365


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the files written by :func:`write_tls`."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


@dataclass(frozen=True)
class NodeKeyFiles:
    """A SuperNode's authentication key pair on disk."""

    private_key: Path
    public_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fl-credit"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return builder.not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(
        now + dt.timedelta(days=VALID_DAYS)
    )


def make_ca(
    common_name: str = "fl-credit local CA",
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed certificate authority (EC P-256)."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return key, _validity(builder).sign(key, hashes.SHA256())


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def make_server_cert(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, hosts: Sequence[str]
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A server certificate signed by the CA, valid for every name or address in ``hosts``."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    return key, _validity(builder).sign(ca_key, hashes.SHA256())


def _write(path: Path, data: bytes, private: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)
    return path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_tls(out: Path, hosts: Sequence[str] = DEFAULT_HOSTS) -> TlsFiles:
    """Write a fresh CA and a SuperLink certificate for ``hosts`` into ``out``.

    Parameters
    ----------
    out : pathlib.Path
        Destination folder (created if needed).
    hosts : sequence of str
        DNS names and IP addresses the SuperLink is reached at.

    Returns
    -------
    TlsFiles
        Paths of ``ca.crt``, ``ca.key``, ``superlink.crt`` and ``superlink.key``.
    """
    hosts = list(dict.fromkeys(hosts))
    ca_key, ca_cert = make_ca()
    key, cert = make_server_cert(ca_key, ca_cert, hosts)
    pem = serialization.Encoding.PEM
    return TlsFiles(
        ca_cert=_write(out / "ca.crt", ca_cert.public_bytes(pem)),
        ca_key=_write(out / "ca.key", _key_pem(ca_key), private=True),
        server_cert=_write(out / "superlink.crt", cert.public_bytes(pem)),
        server_key=_write(out / "superlink.key", _key_pem(key), private=True),
    )


def write_node_keys(out: Path, name: str) -> NodeKeyFiles:
    """Write one SuperNode's EC P-384 key pair in OpenSSH format (``name``, ``name.pub``).

    Flower 1.41 loads the private key with ``load_ssh_private_key`` and
    ``flwr supernode register`` accepts only an OpenSSH public key on a NIST curve.
    """
    key = ec.generate_private_key(ec.SECP384R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return NodeKeyFiles(
        private_key=_write(out / name, private, private=True),
        public_key=_write(out / f"{name}.pub", public + f" {name}\n".encode()),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m fl_credit.certs",
        description="Make a local CA, a SuperLink TLS certificate and SuperNode auth keys.",
    )
    parser.add_argument("--out", required=True, type=Path, help="destination folder")
    parser.add_argument(
        "--host",
        action="append",
        default=[],
        help="extra DNS name or IP address of the SuperLink (repeatable); "
        "localhost and 127.0.0.1 are always included",
    )
    parser.add_argument(
        "--supernode-keys",
        type=int,
        default=0,
        metavar="N",
        help="also write N SuperNode key pairs supernode_0 ... supernode_<N-1>",
    )
    parser.add_argument(
        "--node-key",
        action="append",
        default=[],
        metavar="NAME",
        help="write only the SuperNode key pair NAME, NAME.pub (run at the bank; repeatable)",
    )
    parser.add_argument(
        "--bank-identities",
        nargs="+",
        default=[],
        metavar="BANK",
        help="also issue secure-aggregation identities for these banks and their roster "
        "(consortium.json)",
    )
    args = parser.parse_args(argv)
    if args.supernode_keys < 0:
        print("error: --supernode-keys must be >= 0", file=sys.stderr)
        return 2
    names = args.node_key or [f"supernode_{i}" for i in range(args.supernode_keys)]
    if len(set(args.bank_identities)) != len(args.bank_identities):
        print("error: --bank-identities names must be distinct", file=sys.stderr)
        return 2
    try:
        tls = None if args.node_key else write_tls(args.out, [*DEFAULT_HOSTS, *args.host])
        nodes = [write_node_keys(args.out, name) for name in names]
        if args.bank_identities:
            from fl_credit.protocol.identity import CONSORTIUM_FILE, write_identities

            write_identities(args.out, args.bank_identities)
    except OSError as err:
        print(f"error: cannot write into {args.out}: {err.strerror}", file=sys.stderr)
        return 2
    if tls is not None:
        print(f"CA certificate (give to every bank and to flwr): {tls.ca_cert}")
        print(f"SuperLink certificate and key: {tls.server_cert} {tls.server_key}")
    for node in nodes:
        print(f"SuperNode key pair: {node.private_key} (bank keeps) {node.public_key} (register)")
    if args.bank_identities:
        print(
            f"secure-aggregation identities: <bank>.identity.json (each bank keeps its own) and "
            f"{args.out / CONSORTIUM_FILE} (public roster) in {args.out}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
