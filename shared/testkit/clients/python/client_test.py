"""Runs supabase-auth (pinned in requirements.txt) against a running suite and fails on any
mismatch with what GoTrue would answer. Usage: python client_test.py <gateway url>
The suite must autoconfirm emails, allow anonymous sign-ins and sign with an asymmetric key."""

import base64
import hashlib
import hmac
import random
import struct
import sys
import time

import httpx
from supabase_auth import SyncGoTrueClient
from supabase_auth.errors import AuthError

url = sys.argv[1]


def client() -> SyncGoTrueClient:
    return SyncGoTrueClient(url=url, headers={"apikey": "anon-key"}, auto_refresh_token=False)


def expect_error(call, status: int, code: str) -> AuthError:
    try:
        call()
    except AuthError as error:
        assert error.status == status, f"status {error.status} != {status}: {error.message}"
        assert error.code == code, f"code {error.code} != {code}"
        return error
    raise AssertionError(f"expected {status} {code}")


def totp(secret: str, offset_seconds: int = 0) -> str:
    """RFC 6238 with GoTrue's settings (SHA-1, 6 digits, 30 s), as an authenticator app computes it."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    counter = struct.pack(">Q", int((time.time() + offset_seconds) // 30))
    mac = hmac.new(key, counter, hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    return f"{(struct.unpack('>I', mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 10**6:06d}"


auth = client()
email = f"py-{int(time.time())}-{random.randrange(10**6)}@example.com"
password = "python-password-123"

response = auth.sign_up({"email": email, "password": password, "options": {"data": {"name": "Py"}}})
assert response.session is not None, "sign_up returns a session under autoconfirm"
assert response.user.email == email
assert response.user.user_metadata["name"] == "Py"
assert response.user.app_metadata["providers"] == ["email"]
user_id = response.user.id

expect_error(lambda: client().sign_up({"email": email, "password": password}), 422, "user_already_exists")
error = expect_error(
    lambda: client().sign_in_with_password({"email": email, "password": "wrong"}), 400, "invalid_credentials"
)
assert error.message == "Invalid login credentials"

response = auth.sign_in_with_password({"email": email, "password": password})
assert response.user.id == user_id
first_refresh = response.session.refresh_token

user = auth.get_user()
assert user.user.email == email

claims = auth.get_claims()
assert claims["claims"]["sub"] == user_id
assert claims["claims"]["role"] == "authenticated"

updated = auth.update_user({"data": {"theme": "dark"}})
assert updated.user.user_metadata["theme"] == "dark"
expect_error(lambda: auth.update_user({"password": "123"}), 422, "weak_password")

refreshed = auth.refresh_session()
assert refreshed.session.refresh_token != first_refresh
assert refreshed.user.id == user_id

# MFA: a TOTP factor enrolled, challenged and verified with a code computed from its secret
level = auth.mfa.get_authenticator_assurance_level()
assert (level.current_level, level.next_level) == ("aal1", "aal1"), level
enrolled = auth.mfa.enroll({"factor_type": "totp", "friendly_name": "py app"})
assert enrolled.type == "totp"
assert enrolled.totp.qr_code.startswith("data:image/svg+xml;utf-8,") and "<svg" in enrolled.totp.qr_code
factor_id = enrolled.id
challenge = auth.mfa.challenge({"factor_id": factor_id})
expect_error(
    lambda: auth.mfa.verify({"factor_id": factor_id, "challenge_id": challenge.id, "code": "000000"}),
    422,
    "mfa_verification_failed",
)
verified = auth.mfa.verify({"factor_id": factor_id, "challenge_id": challenge.id, "code": totp(enrolled.totp.secret)})
assert verified.access_token
level = auth.mfa.get_authenticator_assurance_level()
assert (level.current_level, level.next_level) == ("aal2", "aal2"), level
factors = auth.mfa.list_factors()
assert len(factors.totp) == 1 and factors.totp[0].status == "verified"
# a code is accepted once: the next verification uses the next step's code
auth.mfa.challenge_and_verify({"factor_id": factor_id, "code": totp(enrolled.totp.secret, 30)})
assert auth.mfa.unenroll({"factor_id": factor_id}).id == factor_id

# MFA: a phone factor enrolled and challenged by SMS (the code itself is checked by the Rust tests)
phone_factor = auth.mfa.enroll({"factor_type": "phone", "phone": "+15550108080", "friendly_name": "py phone"})
assert phone_factor.type == "phone" and phone_factor.totp is None
phone_challenge = auth.mfa.challenge({"factor_id": phone_factor.id, "channel": "sms"})
assert phone_challenge.factor_type == "phone"
expect_error(
    lambda: auth.mfa.verify({"factor_id": phone_factor.id, "challenge_id": phone_challenge.id, "code": "000000"}),
    422,
    "mfa_verification_failed",
)
expect_error(lambda: auth.mfa.challenge({"factor_id": phone_factor.id}), 429, "over_sms_send_rate_limit")
assert auth.mfa.unenroll({"factor_id": phone_factor.id}).id == phone_factor.id

jwks = httpx.get(f"{url}/.well-known/jwks.json").json()
assert len(jwks["keys"]) == 1 and "d" not in jwks["keys"][0]

last_token = refreshed.session.access_token
auth.sign_out()
expect_error(lambda: client().get_user(last_token), 403, "session_not_found")

anonymous = client().sign_in_anonymously({"options": {"data": {"kind": "guest"}}})
assert anonymous.user.is_anonymous is True
assert anonymous.user.user_metadata["kind"] == "guest"

print("supabase-auth client test passed", file=sys.stderr)
