// Runs @supabase/auth-js (pinned in package.json) against a running suite and fails on any mismatch
// with what GoTrue would answer. Usage: node client_test.mjs <gateway url> <service_role key>
// The suite must autoconfirm emails, allow anonymous sign-ins and sign with an asymmetric key.
import assert from 'node:assert/strict'
import { AuthClient } from '@supabase/auth-js'
import { createHmac } from 'node:crypto'

// RFC 6238 with GoTrue's settings (SHA-1, 6 digits, 30 s), as an authenticator app computes it.
const totp = (base32Secret, offsetSeconds = 0) => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = ''
  for (const char of base32Secret.replace(/=+$/, '')) bits += alphabet.indexOf(char).toString(2).padStart(5, '0')
  const key = Buffer.from(bits.match(/.{8}/g).map((byte) => parseInt(byte, 2)))
  const counter = Buffer.alloc(8)
  counter.writeBigUInt64BE(BigInt(Math.floor((Date.now() / 1000 + offsetSeconds) / 30)))
  const mac = createHmac('sha1', key).update(counter).digest()
  const offset = mac[mac.length - 1] & 0xf
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1e6).padStart(6, '0')
}

const url = process.argv[2]
assert.ok(url, 'usage: node client_test.mjs <gateway url>')

const memory = new Map()
const storage = {
  getItem: (key) => memory.get(key) ?? null,
  setItem: (key, value) => { memory.set(key, value) },
  removeItem: (key) => { memory.delete(key) },
}
const client = () => new AuthClient({
  url,
  headers: { apikey: 'anon-key' },
  storage,
  persistSession: true,
  autoRefreshToken: false,
  detectSessionInUrl: false,
})
const auth = client()

const email = `node-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`
const password = 'node-password-123'

// sign-up (autoconfirm: a session at once)
let { data, error } = await auth.signUp({ email, password, options: { data: { name: 'Node' } } })
assert.equal(error, null, `signUp: ${error?.message}`)
assert.ok(data.session, 'signUp returns a session under autoconfirm')
assert.equal(data.user.email, email)
assert.equal(data.user.user_metadata.name, 'Node')
assert.equal(data.user.app_metadata.provider, 'email')
assert.deepEqual(data.user.app_metadata.providers, ['email'])
const userId = data.user.id

// repeated sign-up: 422 user_already_exists
;({ data, error } = await client().signUp({ email, password }))
assert.ok(error, 'repeated signUp fails')
assert.equal(error.status, 422)
assert.equal(error.code, 'user_already_exists')

// wrong password
;({ data, error } = await client().signInWithPassword({ email, password: 'wrong-password' }))
assert.equal(error?.status, 400)
assert.equal(error?.code, 'invalid_credentials')
assert.equal(error?.message, 'Invalid login credentials')

// sign-in
;({ data, error } = await auth.signInWithPassword({ email, password }))
assert.equal(error, null, `signInWithPassword: ${error?.message}`)
assert.equal(data.user.id, userId)
assert.equal(data.session.token_type, 'bearer')
assert.ok(data.session.expires_at > Date.now() / 1000)
const firstSession = data.session

// get user
;({ data, error } = await auth.getUser())
assert.equal(error, null, `getUser: ${error?.message}`)
assert.equal(data.user.email, email)

// claims verified locally against the JWKS (asymmetric key)
;({ data, error } = await auth.getClaims())
assert.equal(error, null, `getClaims: ${error?.message}`)
assert.equal(data.claims.sub, userId)
assert.equal(data.claims.role, 'authenticated')
assert.equal(data.claims.aal, 'aal1')
assert.ok(['RS256', 'ES256', 'EdDSA'].includes(data.header.alg), `alg ${data.header.alg}`)

// update user
;({ data, error } = await auth.updateUser({ data: { theme: 'dark' } }))
assert.equal(error, null, `updateUser: ${error?.message}`)
assert.equal(data.user.user_metadata.theme, 'dark')
assert.equal(data.user.user_metadata.name, 'Node')

// weak password is refused with reasons
;({ data, error } = await auth.updateUser({ password: '123' }))
assert.equal(error?.status, 422)
assert.equal(error?.code, 'weak_password')
assert.deepEqual(error?.reasons, ['length'])

// refresh
;({ data, error } = await auth.refreshSession())
assert.equal(error, null, `refreshSession: ${error?.message}`)
assert.notEqual(data.session.refresh_token, firstSession.refresh_token)
assert.equal(data.user.id, userId)

// MFA: a TOTP factor enrolled, challenged and verified with a code computed from its secret
;({ data, error } = await auth.mfa.getAuthenticatorAssuranceLevel())
assert.equal(error, null, `getAuthenticatorAssuranceLevel: ${error?.message}`)
assert.equal(data.currentLevel, 'aal1')
assert.equal(data.nextLevel, 'aal1')
;({ data, error } = await auth.mfa.enroll({ factorType: 'totp', friendlyName: 'node app' }))
assert.equal(error, null, `mfa.enroll: ${error?.message}`)
assert.equal(data.type, 'totp')
assert.equal(data.friendly_name, 'node app')
assert.ok(data.totp.qr_code.startsWith('data:image/svg+xml;utf-8,') && data.totp.qr_code.includes('<svg'), data.totp.qr_code.slice(0, 40))
assert.ok(data.totp.uri.startsWith('otpauth://totp/'))
const factorId = data.id
const secret = data.totp.secret
;({ data, error } = await auth.mfa.challenge({ factorId }))
assert.equal(error, null, `mfa.challenge: ${error?.message}`)
const challengeId = data.id
assert.ok(data.expires_at > Date.now() / 1000)
;({ data, error } = await auth.mfa.verify({ factorId, challengeId, code: '000000' }))
assert.equal(error?.status, 422)
assert.equal(error?.code, 'mfa_verification_failed')
;({ data, error } = await auth.mfa.verify({ factorId, challengeId, code: totp(secret) }))
assert.equal(error, null, `mfa.verify: ${error?.message}`)
assert.ok(data.access_token)
;({ data, error } = await auth.mfa.getAuthenticatorAssuranceLevel())
assert.equal(error, null)
assert.equal(data.currentLevel, 'aal2')
assert.equal(data.nextLevel, 'aal2')
assert.ok(data.currentAuthenticationMethods.some((m) => m.method === 'totp'), JSON.stringify(data))
;({ data, error } = await auth.mfa.listFactors())
assert.equal(error, null, `mfa.listFactors: ${error?.message}`)
assert.equal(data.totp.length, 1)
assert.equal(data.totp[0].status, 'verified')
// a code is accepted once: the next verification uses the next step's code
;({ data, error } = await auth.mfa.challengeAndVerify({ factorId, code: totp(secret, 30) }))
assert.equal(error, null, `mfa.challengeAndVerify: ${error?.message}`)
;({ data, error } = await auth.mfa.unenroll({ factorId }))
assert.equal(error, null, `mfa.unenroll: ${error?.message}`)
assert.equal(data.id, factorId)

// MFA: a phone factor enrolled and challenged by SMS (the code itself is checked by the Rust tests)
;({ data, error } = await auth.mfa.enroll({ factorType: 'phone', phone: '+15550109090', friendlyName: 'node phone' }))
assert.equal(error, null, `mfa.enroll phone: ${error?.message}`)
assert.equal(data.type, 'phone')
assert.equal(data.phone, '+15550109090')
const phoneFactorId = data.id
;({ data, error } = await auth.mfa.challenge({ factorId: phoneFactorId, channel: 'sms' }))
assert.equal(error, null, `mfa.challenge phone: ${error?.message}`)
assert.equal(data.type, 'phone')
;({ data, error } = await auth.mfa.verify({ factorId: phoneFactorId, challengeId: data.id, code: '000000' }))
assert.equal(error?.status, 422)
assert.equal(error?.code, 'mfa_verification_failed')
;({ data, error } = await auth.mfa.challenge({ factorId: phoneFactorId }))
assert.equal(error?.status, 429)
assert.equal(error?.code, 'over_sms_send_rate_limit')
;({ data, error } = await auth.mfa.unenroll({ factorId: phoneFactorId }))
assert.equal(error, null, `mfa.unenroll phone: ${error?.message}`)

// JWKS
const jwks = await (await fetch(`${url}/.well-known/jwks.json`)).json()
assert.equal(jwks.keys.length, 1)
assert.equal(jwks.keys[0].d, undefined)

// sign-out ends the session: its access token no longer works
const lastToken = (await auth.getSession()).data.session.access_token
;({ error } = await auth.signOut())
assert.equal(error, null, `signOut: ${error?.message}`)
;({ data, error } = await auth.getUser(lastToken))
// auth-js turns GoTrue's 403 session_not_found into AuthSessionMissingError (lib/fetch.js)
assert.equal(error?.name, 'AuthSessionMissingError', JSON.stringify(error))

// anonymous sign-in
const anon = client()
memory.clear()
;({ data, error } = await anon.signInAnonymously({ options: { data: { kind: 'guest' } } }))
assert.equal(error, null, `signInAnonymously: ${error?.message}`)
assert.equal(data.user.is_anonymous, true)
assert.equal(data.user.user_metadata.kind, 'guest')

// the admin API (supabase.auth.admin) with the service_role key
const serviceKey = process.argv[3]
assert.ok(serviceKey, 'the service_role key is the second argument')
const admin = new AuthClient({
  url,
  headers: { apikey: serviceKey, Authorization: `Bearer ${serviceKey}` },
  persistSession: false,
  autoRefreshToken: false,
  detectSessionInUrl: false,
}).admin
const adminEmail = `node-admin-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`
;({ data, error } = await admin.createUser({
  email: adminEmail, password: 'admin-made-123', email_confirm: true, user_metadata: { team: 'blue' },
}))
assert.equal(error, null, `admin.createUser: ${error?.message}`)
assert.equal(data.user.email, adminEmail)
assert.ok(data.user.email_confirmed_at)
assert.equal(data.user.user_metadata.team, 'blue')
const createdId = data.user.id

;({ data, error } = await admin.createUser({ email: adminEmail }))
assert.equal(error?.status, 422)
assert.equal(error?.code, 'email_exists')

;({ data, error } = await admin.listUsers({ page: 1, perPage: 1 }))
assert.equal(error, null, `admin.listUsers: ${error?.message}`)
assert.equal(data.users.length, 1)
assert.equal(data.aud, 'authenticated')
assert.equal(data.total, 3, 'X-Total-Count: the node user, the anonymous user and this one')
assert.equal(data.lastPage, 3, 'Link rel="last"')
assert.equal(data.nextPage, 2, 'Link rel="next"')

;({ data, error } = await admin.getUserById(createdId))
assert.equal(error, null, `admin.getUserById: ${error?.message}`)
assert.equal(data.user.email, adminEmail)

;({ data, error } = await admin.updateUserById(createdId, { user_metadata: { team: null, plan: 'pro' }, ban_duration: '1h' }))
assert.equal(error, null, `admin.updateUserById: ${error?.message}`)
assert.deepEqual(data.user.user_metadata, { plan: 'pro', email_verified: true })
assert.ok(data.user.banned_until)

;({ data, error } = await admin.deleteUser(createdId))
assert.equal(error, null, `admin.deleteUser: ${error?.message}`)
;({ data, error } = await admin.getUserById(createdId))
assert.equal(error?.status, 404)
assert.equal(error?.code, 'user_not_found')

// generated links: the user fields beside `properties`, and the hashed token verifies
const linkEmail = `node-link-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`
;({ data, error } = await admin.generateLink({ type: 'signup', email: linkEmail, password: 'link-made-123' }))
assert.equal(error, null, `admin.generateLink: ${error?.message}`)
assert.equal(data.user.email, linkEmail)
assert.equal(data.properties.verification_type, 'signup')
assert.match(data.properties.action_link, /\/verify\?token=[0-9a-f]{56}&type=signup&redirect_to=/)
assert.match(data.properties.email_otp, /^[0-9]{6}$/)
const linked = client()
memory.clear()
;({ data, error } = await linked.verifyOtp({ type: 'signup', token_hash: data.properties.hashed_token }))
assert.equal(error, null, `verifyOtp(token_hash): ${error?.message}`)
assert.equal(data.user.email, linkEmail)
assert.ok(data.session.access_token)
;({ data, error } = await admin.generateLink({ type: 'recovery', email: `nobody-${Date.now()}@example.com` }))
assert.equal(error?.status, 404)
assert.equal(error?.code, 'user_not_found')

// invitations
;({ data, error } = await admin.inviteUserByEmail(`node-invite-${Date.now()}@example.com`, { data: { team: 'green' } }))
assert.equal(error, null, `admin.inviteUserByEmail: ${error?.message}`)
assert.ok(data.user.invited_at)
assert.equal(data.user.user_metadata.team, 'green')

// the admin factor API (admin.mfa)
const linkedId = data.user.id
;({ data, error } = await admin.mfa.listFactors({ userId: linkedId }))
assert.equal(error, null, `admin.mfa.listFactors: ${error?.message}`)
assert.deepEqual(data.factors, [])
;({ data, error } = await admin.mfa.deleteFactor({ userId: linkedId, id: '3f0c7e5e-2b1a-4f61-9d2e-8a7b6c5d4e3f' }))
assert.equal(error?.status, 404)
assert.equal(error?.code, 'mfa_factor_not_found')

// a user's token is not an admin's
const userAdmin = new AuthClient({ url, headers: { Authorization: `Bearer ${lastToken}` } }).admin
;({ data, error } = await userAdmin.listUsers())
assert.ok(error, 'a user token cannot list users')

console.error('auth-js client test passed')
