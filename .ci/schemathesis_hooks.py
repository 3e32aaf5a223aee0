"""Schemathesis hooks for .ci/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

The payment callback authenticates with `X-Signature`, the hex HMAC-SHA256 of the raw body under
PAYMENT_WEBHOOK_SECRET (security scheme `paymentSignature`). Schemathesis cannot compute that:
.ci/schemathesis.toml gives it a placeholder as the valid credential, and this hook replaces the
placeholder with the signature of exactly the bytes sent. Requests without the header or with
another value (the `ignored_auth` probes) go out as they are and must be refused with 401.
"""

import hashlib
import hmac
import json
import os

import schemathesis
from schemathesis.core import NotSet

SECRET = os.environ["PAYMENT_WEBHOOK_SECRET"].encode()
PLACEHOLDER = "to-be-signed-by-the-hook"  # as in .ci/schemathesis.toml


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.path != "/api/payment/callback" or not case.headers or case.headers.get("X-Signature") != PLACEHOLDER:
        return
    # The bytes sent are the bytes signed: `data` replaces schemathesis' own serialization.
    if isinstance(case.body, NotSet):
        raw = b""  # the coverage phase leaves the body out
    elif isinstance(case.body, (bytes, bytearray)):
        raw = bytes(case.body)
    else:
        raw = json.dumps(case.body).encode()
    kwargs["data"] = raw
    case.headers["X-Signature"] = hmac.new(SECRET, raw, hashlib.sha256).hexdigest()
