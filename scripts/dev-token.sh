#!/bin/sh
# dev-token.sh - a development identity provider in a directory: a signing key,
# the JWKS the services trust, and M2M tokens for calling their gRPC APIs
# (docs/auth.md). Never for production: the private key sits in a file.
#
#   sh scripts/dev-token.sh init DIR
#       DIR/signing-key.pem (EC P-256, ES256) and DIR/jwks.json (kid "dev-1");
#       prints the RTE_GRPC_AUTH_* settings that make a service trust it
#   sh scripts/dev-token.sh mint DIR AUDIENCE "SCOPES" [CLIENT] [TTL_SECONDS]
#       prints a token: iss https://dev.rte.invalid/, aud AUDIENCE, scope
#       SCOPES (space-separated), client_id CLIENT (default "dev-cli"), exp
#       now + TTL (default 3600)
#
# Example:
#   sh scripts/dev-token.sh init run/idp
#   TOKEN=$(sh scripts/dev-token.sh mint run/idp rte-cache-warmer "rte:warm:read")
#   grpcurl -plaintext -H "authorization: Bearer $TOKEN" ...
#
# Needs openssl and Debian's python3-cryptography and python3-jwt
# (scripts/deps.sh installs them).
set -eu
ISSUER=https://dev.rte.invalid/
PY=/usr/bin/python3

usage() {
    sed -n '2,20p' "$0" >&2
    exit 2
}

[ $# -ge 2 ] || usage
cmd=$1 dir=$2
shift 2
case $cmd in
init)
    mkdir -p "$dir"
    umask 077
    openssl ecparam -name prime256v1 -genkey -noout -out "$dir/signing-key.pem.tmp"
    openssl pkcs8 -topk8 -nocrypt -in "$dir/signing-key.pem.tmp" -out "$dir/signing-key.pem"
    rm -f "$dir/signing-key.pem.tmp"
    umask 022
    "$PY" - "$dir" <<'PY'
import json, sys
import jwt
from cryptography.hazmat.primitives import serialization
d = sys.argv[1]
key = serialization.load_pem_private_key(open(f"{d}/signing-key.pem", "rb").read(), None)
jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
jwk.update(kid="dev-1", use="sig", alg="ES256")
with open(f"{d}/jwks.json", "w") as f:
    json.dump({"keys": [jwk]}, f, indent=1)
PY
    echo "RTE_GRPC_AUTH_JWKS_FILE=$(cd "$dir" && pwd)/jwks.json"
    echo "RTE_GRPC_AUTH_ISSUER=$ISSUER"
    echo "RTE_GRPC_AUTH_AUDIENCE=<the service's audience, e.g. rte-cache-warmer>"
    ;;
mint)
    [ $# -ge 2 ] || usage
    "$PY" - "$dir" "$ISSUER" "$@" <<'PY'
import sys, time
import jwt
from cryptography.hazmat.primitives import serialization
d, iss, aud, scope = sys.argv[1:5]
client = sys.argv[5] if len(sys.argv) > 5 else "dev-cli"
ttl = int(sys.argv[6]) if len(sys.argv) > 6 else 3600
key = serialization.load_pem_private_key(open(f"{d}/signing-key.pem", "rb").read(), None)
now = int(time.time())
claims = {"iss": iss, "aud": aud, "iat": now, "exp": now + ttl, "client_id": client,
          "scope": scope}
print(jwt.encode(claims, key, algorithm="ES256", headers={"kid": "dev-1", "typ": "JWT"}))
PY
    ;;
*) usage ;;
esac
