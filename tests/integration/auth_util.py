"""Helpers for suites that call gRPC with tokens (no tests here): RSA and EC
signing keys with their JWKS file, tokens minted with PyJWT (Debian's
python3-jwt), a throw-away CA and server certificate for TLS (python3-cryptography),
and the env that turns token checks on (docs/auth.md)."""
import datetime
import ipaddress
import json
import os
import time

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

ISSUER = "https://idp.rte.test/"


class Keys:
    """An RS256 key (kid rsa-1), an ES256 key (kid ec-1) and a key nobody trusts."""

    def __init__(self, workdir):
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.rogue = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jwks_path = os.path.join(workdir, f"jwks-{time.monotonic_ns()}.json")
        keys = []
        for kid, k, alg in (("rsa-1", self.rsa, jwt.algorithms.RSAAlgorithm),
                            ("ec-1", self.ec, jwt.algorithms.ECAlgorithm)):
            d = json.loads(alg.to_jwk(k.public_key()))
            d.update(kid=kid, use="sig")
            keys.append(d)
        with open(self.jwks_path, "w") as f:
            json.dump({"keys": keys}, f)

    def token(self, audience, scope="", client="it-client", alg="RS256", kid=None,
              exp_in=300, key=None, **claims):
        now = int(time.time())
        body = {"iss": ISSUER, "aud": audience, "iat": now, "exp": now + exp_in,
                "client_id": client}
        if scope is not None:
            body["scope"] = scope
        body.update(claims)
        if key is None:
            key = self.rsa if alg == "RS256" else self.ec
        kid = kid or ("rsa-1" if alg == "RS256" else "ec-1")
        return jwt.encode(body, key, algorithm=alg, headers={"kid": kid})

    def env(self, audience):
        return {"RTE_GRPC_AUTH_REQUIRED": "true", "RTE_GRPC_AUTH_JWKS_FILE": self.jwks_path,
                "RTE_GRPC_AUTH_ISSUER": ISSUER, "RTE_GRPC_AUTH_AUDIENCE": audience}


def bearer(token):
    return [("authorization", "Bearer " + token)]


def make_tls(workdir):
    """A CA and a server certificate for 127.0.0.1/localhost: (ca_pem, cert_path, key_path)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rte test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    tag = time.monotonic_ns()
    cert_path = os.path.join(workdir, f"grpc-{tag}.crt")
    key_path = os.path.join(workdir, f"grpc-{tag}.key")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return ca.public_bytes(serialization.Encoding.PEM), cert_path, key_path
