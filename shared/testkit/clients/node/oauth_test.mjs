// Runs @supabase/auth-js's OAuth sign-in (signInWithOAuth, implicit and PKCE flows,
// exchangeCodeForSession, getUserIdentities, linkIdentity, unlinkIdentity, signInWithIdToken)
// against a running suite whose GitHub and Keycloak providers point at the test's fake provider,
// with manual linking on. Usage:
//   node oauth_test.mjs <gateway url> <service_role key> <email> <code> <code> <link code> <id token>
// The two codes are granted by the fake provider for one user with <email> (verified), the link
// code for a second GitHub account; the ID token is the fake Keycloak realm's.
//
// Node has no browser, so the script follows the redirects a browser would: auth-js's /authorize
// URL to the provider, the provider's redirect back to /callback (with the granted code), and the
// app URL the gateway lands on, whose tokens (implicit) or code (PKCE) it hands to auth-js.
import assert from 'node:assert/strict'
import { AuthClient } from '@supabase/auth-js'

const [url, serviceKey, email, implicitCode, pkceCode, linkCode, idToken] = process.argv.slice(2)
assert.ok(url && serviceKey && email && implicitCode && pkceCode && linkCode && idToken, 'usage: see the header')
const APP = 'http://localhost:3000/welcome'

const memoryStorage = () => {
  const items = new Map()
  return {
    getItem: (key) => items.get(key) ?? null,
    setItem: (key, value) => { items.set(key, value) },
    removeItem: (key) => { items.delete(key) }
  }
}
const client = (flowType) => new AuthClient({
  url,
  autoRefreshToken: false,
  persistSession: true,
  detectSessionInUrl: false,
  storage: memoryStorage(),
  flowType
})

// The browser's part: /authorize → the provider (which asks the user) → /callback → the app.
const browse = async (authorizeUrl, code) => {
  const toProvider = await fetch(authorizeUrl, { redirect: 'manual' })
  assert.equal(toProvider.status, 302, await toProvider.text())
  const providerUrl = new URL(toProvider.headers.get('location'))
  return { providerUrl, landed: await comeBack(providerUrl, code) }
}

// The provider's part: the user agrees, the browser goes back to /callback with the code.
const comeBack = async (providerUrl, code) => {
  assert.equal(providerUrl.pathname, '/login/oauth/authorize')
  const state = providerUrl.searchParams.get('state')
  assert.ok(state, 'the provider is given the flow state')
  const back = await fetch(`${url}/callback?code=${encodeURIComponent(code)}&state=${encodeURIComponent(state)}`, { redirect: 'manual' })
  assert.equal(back.status, 302, await back.text())
  return new URL(back.headers.get('location'))
}

// --- implicit flow ----------------------------------------------------------------------------
const implicit = client('implicit')
{
  const { data, error } = await implicit.signInWithOAuth({
    provider: 'github',
    options: { redirectTo: APP, skipBrowserRedirect: true, scopes: 'repo', queryParams: { login: 'octo' } }
  })
  assert.ifError(error)
  const { providerUrl, landed } = await browse(data.url, implicitCode)
  assert.equal(providerUrl.searchParams.get('scope'), 'user:email repo')
  assert.equal(providerUrl.searchParams.get('login'), 'octo')
  assert.equal(`${landed.origin}${landed.pathname}`, APP)
  const fragment = new URLSearchParams(landed.hash.slice(1))
  assert.equal(fragment.get('token_type'), 'bearer')
  assert.ok(fragment.get('provider_token'), 'the provider token comes along')
  const { data: set, error: setError } = await implicit.setSession({
    access_token: fragment.get('access_token'),
    refresh_token: fragment.get('refresh_token')
  })
  assert.ifError(setError)
  assert.equal(set.user.email, email)
  assert.equal(set.user.app_metadata.provider, 'github')
  const { data: identities, error: identitiesError } = await implicit.getUserIdentities()
  assert.ifError(identitiesError)
  assert.equal(identities.identities.length, 1)
  assert.equal(identities.identities[0].provider, 'github')
  assert.equal(identities.identities[0].identity_data.email, email)

  // Manual linking: a second GitHub account joins the signed-in user, then leaves again.
  const { data: link, error: linkError } = await implicit.linkIdentity({
    provider: 'github',
    options: { redirectTo: APP, skipBrowserRedirect: true }
  })
  assert.ifError(linkError)
  // With skipBrowserRedirect, auth-js already asked the suite for the provider's URL.
  const linkedAt = await comeBack(new URL(link.url), linkCode)
  const linked = new URLSearchParams(linkedAt.hash.slice(1))
  assert.ok(linked.get('access_token'), `linked: ${linkedAt}`)
  await implicit.setSession({ access_token: linked.get('access_token'), refresh_token: linked.get('refresh_token') })
  const { data: both } = await implicit.getUserIdentities()
  assert.equal(both.identities.length, 2)
  const second = both.identities.find((identity) => identity.identity_data.email !== email)
  const { error: unlinkError } = await implicit.unlinkIdentity(second)
  assert.ifError(unlinkError)
  const { data: one } = await implicit.getUserIdentities()
  assert.equal(one.identities.length, 1)
  const { error: lastError } = await implicit.unlinkIdentity(one.identities[0])
  assert.equal(lastError?.code, 'single_identity_not_deletable')
}

// --- PKCE flow --------------------------------------------------------------------------------
const pkce = client('pkce')
{
  const { data, error } = await pkce.signInWithOAuth({
    provider: 'github',
    options: { redirectTo: APP, skipBrowserRedirect: true }
  })
  assert.ifError(error)
  const authorizeUrl = new URL(data.url)
  assert.equal(authorizeUrl.searchParams.get('code_challenge_method'), 's256')
  const { landed } = await browse(data.url, pkceCode)
  assert.equal(landed.hash, '', 'no tokens in a PKCE redirect')
  const code = landed.searchParams.get('code')
  assert.ok(code, 'the app gets an auth code')
  const { data: exchanged, error: exchangeError } = await pkce.exchangeCodeForSession(code)
  assert.ifError(exchangeError)
  assert.equal(exchanged.user.email, email)
  assert.ok(exchanged.session.provider_token?.startsWith('access-'), JSON.stringify(exchanged.session))
  assert.ok(exchanged.session.provider_refresh_token?.startsWith('refresh-'))
  // Used once.
  const again = await pkce.exchangeCodeForSession(code)
  assert.ok(again.error, 'a spent code fails')
}
// --- a native app's ID token --------------------------------------------------------------------
{
  const native = client('implicit')
  const { data, error } = await native.signInWithIdToken({ provider: 'keycloak', token: idToken })
  assert.ifError(error)
  assert.ok(data.session?.access_token, 'a session')
  assert.equal(data.user.app_metadata.provider, 'keycloak')
  const { error: badError } = await native.signInWithIdToken({ provider: 'keycloak', token: `${idToken}x` })
  assert.equal(badError?.status, 400, 'a forged ID token is refused')
}
console.log('auth-js OAuth: ok')
