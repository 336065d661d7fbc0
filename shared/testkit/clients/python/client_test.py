"""Runs supabase-auth (pinned in requirements.txt) against a running suite and fails on any
mismatch with what GoTrue would answer. Usage: python client_test.py <gateway url>
The suite must autoconfirm emails, allow anonymous sign-ins and sign with an asymmetric key."""

import random
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

jwks = httpx.get(f"{url}/.well-known/jwks.json").json()
assert len(jwks["keys"]) == 1 and "d" not in jwks["keys"][0]

last_token = refreshed.session.access_token
auth.sign_out()
expect_error(lambda: client().get_user(last_token), 403, "session_not_found")

anonymous = client().sign_in_anonymously({"options": {"data": {"kind": "guest"}}})
assert anonymous.user.is_anonymous is True
assert anonymous.user.user_metadata["kind"] == "guest"

print("supabase-auth client test passed", file=sys.stderr)
