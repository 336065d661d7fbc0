"""Runs supabase-auth's external sign-in (sign_in_with_oauth with PKCE, exchange_code_for_session,
get_user_identities, link_identity, unlink_identity, sign_in_with_id_token) against a running
suite whose GitHub provider points at the test's fake provider and whose Keycloak realm is that
provider's. Usage:
  python oauth_test.py <gateway url> <email> <code> <link code> <keycloak id token>
The first code signs in a GitHub user with <email> (verified), the link code a second GitHub
account; the ID token names another user of the realm. The script plays the browser."""

import sys
from urllib.parse import parse_qs, urlparse

import httpx
from supabase_auth import SyncGoTrueClient

url, email, code, link_code, id_token = sys.argv[1:6]
APP = "http://localhost:3000/welcome"


def client(flow_type: str) -> SyncGoTrueClient:
    return SyncGoTrueClient(url=url, headers={"apikey": "anon-key"}, auto_refresh_token=False, flow_type=flow_type)


def come_back(provider_url: str, provider_code: str) -> str:
    """The provider's redirect back to /callback; the app URL the suite lands on."""
    parsed = urlparse(provider_url)
    assert parsed.path == "/login/oauth/authorize", provider_url
    state = parse_qs(parsed.query)["state"][0]
    back = httpx.get(f"{url}/callback", params={"code": provider_code, "state": state}, follow_redirects=False)
    assert back.status_code == 302, back.text
    return back.headers["location"]


# PKCE: the verifier stays with the client, the app gets ?code=.
auth = client("pkce")
started = auth.sign_in_with_oauth({"provider": "github", "options": {"redirect_to": APP}})
to_provider = httpx.get(started.url, follow_redirects=False)
assert to_provider.status_code == 302, to_provider.text
landed = urlparse(come_back(to_provider.headers["location"], code))
assert landed.fragment == "", "no tokens in a PKCE redirect"
auth_code = parse_qs(landed.query)["code"][0]
signed_in = auth.exchange_code_for_session({"auth_code": auth_code})
assert signed_in.user.email == email
assert signed_in.session.provider_token.startswith("access-"), signed_in.session
identities = auth.get_user_identities().identities
assert [i.provider for i in identities] == ["github"]

# Manual linking (a PKCE flow too): a second GitHub account joins, then leaves.
link = auth.link_identity({"provider": "github", "options": {"redirect_to": APP}})
linked_at = urlparse(come_back(link.url, link_code))
relinked = auth.exchange_code_for_session({"auth_code": parse_qs(linked_at.query)["code"][0]})
assert relinked.user.id == signed_in.user.id
identities = auth.get_user_identities().identities
assert len(identities) == 2, identities
second = next(i for i in identities if i.identity_data.get("email") != email)
auth.unlink_identity(second)
assert len(auth.get_user_identities().identities) == 1

# An ID token of the Keycloak realm.
native = client("implicit")
with_token = native.sign_in_with_id_token({"provider": "keycloak", "token": id_token})
assert with_token.session is not None
assert with_token.user.app_metadata["provider"] == "keycloak"
print("supabase-auth OAuth: ok")
