"""TLS between the check committee's MPyC parties, pinned to the certificates each committee member published.

MPyC's ``--ssl`` makes every party load ``.config/party_{i}.crt`` and ``.config/party_{i}.key`` (its own
certificate and key) and ``.config/mpyc_ca.crt`` (the certificates it trusts) from its working folder; a client
checks that the server it dials presents a trusted certificate for the name ``MPyC party {j}``, and a server
requires a trusted client certificate.

A committee member's seat changes every round, so each member publishes, once per task, one self-signed
certificate per possible seat (:func:`seat_certificates`: ``MPyC party s`` as its only name, all with one Ed25519
key). For a round, a party trusts exactly the certificate that the member at seat ``s`` published for seat ``s``,
for every ``s`` (:func:`write_mpyc_tls`). So a client reaching seat ``j`` accepts only the member at seat ``j``: the
other trusted certificates carry other names. A server cannot rely on names (a client certificate carries no name
MPyC checks), so once connected every party compares the certificate each peer presented with the one pinned for
that peer's seat (:func:`guard_connections`) before any share is sent; a mismatch aborts the checks by name.

The key is Ed25519 and every field of the certificates is fixed (validity, serial), and Ed25519 signatures are
deterministic: a member's node regenerates byte-identical certificates after a restart, so what it published stays
valid without keeping certificate files.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fedledger.exceptions import BadInput
from fedledger.identity.private import write_private

__all__ = [
    "certificate_fingerprint",
    "check_seat_certificates",
    "seat_certificates",
    "seat_name",
    "guard_connections",
    "presented_fingerprint",
    "write_mpyc_tls",
]

_NOT_BEFORE = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
_NOT_AFTER = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)  # RFC 5280: no expiry date
_MAX_PEM = 4096


def seat_name(seat: int) -> str:
    """The name MPyC checks on the certificate of the party at ``seat`` (its ``server_hostname``)."""
    return f"MPyC party {seat}"


def _certificate(key: Ed25519PrivateKey, seat: int) -> x509.Certificate:
    public = key.public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, seat_name(seat))])
    serial = int.from_bytes(hashlib.sha256(b"fedledger/mpc-seat/1" + raw + seat.to_bytes(2, "big")).digest()[:16])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(serial >> 1 or 1)  # positive, at most 127 bits (RFC 5280: 20 bytes)
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_AFTER)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(seat_name(seat))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    )
    return builder.sign(key, None)


def seat_certificates(key: Ed25519PrivateKey, seats: int) -> list[str]:
    """One self-signed certificate (PEM) per seat ``0 .. seats - 1``, each naming only its seat; deterministic."""
    return [_certificate(key, s).public_bytes(serialization.Encoding.PEM).decode() for s in range(seats)]


def certificate_fingerprint(pem: str) -> str:
    """sha256 of the certificate's DER bytes, hex: what a peer's presented certificate is compared with."""
    return hashlib.sha256(
        x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    ).hexdigest()


def check_seat_certificates(certificates: Any, public_key: str, seats: int) -> list[str]:
    """Check published seat certificates: ``seats`` PEM strings, certificate ``s`` self-signed by the Ed25519 key
    ``public_key`` (hex), naming only seat ``s``, not a CA. Returns them; :class:`BadInput` says what is wrong."""
    if not isinstance(certificates, list) or len(certificates) != seats:
        raise BadInput(f"expected {seats} seat certificates")
    try:
        expected = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key))
    except (TypeError, ValueError) as exc:
        raise BadInput(f"the TLS public key is not an Ed25519 key in hex: {exc}") from exc
    for seat, pem in enumerate(certificates):
        if not isinstance(pem, str) or len(pem) > _MAX_PEM:
            raise BadInput(f"seat certificate {seat} is not a PEM string")
        try:
            cert = x509.load_pem_x509_certificate(pem.encode())
            names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
            key = cert.public_key()
            if not isinstance(key, Ed25519PublicKey) or key != expected:
                raise BadInput(f"seat certificate {seat} is not for the published TLS key")
            key.verify(cert.signature, cert.tbs_certificate_bytes)
        except (ValueError, x509.ExtensionNotFound, InvalidSignature) as exc:
            raise BadInput(f"seat certificate {seat} is malformed or not self-signed: {exc}") from exc
        if names.get_values_for_type(x509.DNSName) != [seat_name(seat)] or constraints.ca:
            raise BadInput(f"seat certificate {seat} must name only {seat_name(seat)!r} and not be a CA")
    return list(certificates)


def write_mpyc_tls(folder: Path, seat: int, key: Ed25519PrivateKey, trusted: Sequence[str]) -> Path:
    """Write what MPyC's ``--ssl`` reads for the party at ``seat`` under ``folder/.config`` and return ``folder``
    (the party's working folder): its own seat certificate and key, and ``trusted[s]`` (the certificate the member
    at seat ``s`` published for it) as the only certificates it trusts."""
    config = folder / ".config"
    config.mkdir(parents=True, exist_ok=True)
    (config / f"party_{seat}.crt").write_text(trusted[seat])
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    write_private(config / f"party_{seat}.key", pem)
    (config / "mpyc_ca.crt").write_text("".join(trusted))
    return folder


def presented_fingerprint(transport: Any) -> str | None:
    """sha256 of the certificate the peer presented on ``transport`` (hex); None when the connection is not TLS."""
    tls = transport.get_extra_info("ssl_object") if transport is not None else None
    presented = tls.getpeercert(binary_form=True) if tls is not None else None
    return hashlib.sha256(presented).hexdigest() if presented else None


def guard_connections(mpc: Any, pins: Sequence[str], on_impostor: Callable[[int], None]) -> None:
    """Make an MPyC runtime register a peer's connection only when the peer presented the certificate pinned for
    its seat (``pins[s]``: :func:`certificate_fingerprint`); otherwise call ``on_impostor(seat)``.

    MPyC registers a connection (``set_protocol``) once the client's first message names its seat, before it sends
    the peer anything; a connection left unregistered never gets a share. A client names the server's seat by the
    server's certificate already; a server learns the client's seat only from that first message, so this is where
    a committee member claiming another's seat is caught."""
    register = mpc.set_protocol

    def checked(peer_pid: int, protocol: Any) -> None:
        if not 0 <= peer_pid < len(pins) or presented_fingerprint(protocol.transport) != pins[peer_pid]:
            on_impostor(peer_pid)
            return
        register(peer_pid, protocol)

    mpc.set_protocol = checked
