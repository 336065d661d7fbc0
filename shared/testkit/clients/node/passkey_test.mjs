// Runs @supabase/auth-js's passkey API (auth.passkey.*, auth.admin.passkey.*; experimental in
// 2.109) against a running suite. Usage: node passkey_test.mjs <gateway url> <service_role key>
// The suite must autoconfirm emails, enable passkeys and name http://localhost:3000 (RP id
// localhost) as its WebAuthn origin.
//
// Node has no navigator.credentials, so the test plays the browser and a platform authenticator:
// it answers the options auth-js fetched with a P-256 credential it makes (a resident key: it keeps
// the user handle) and hands the serialized answer back to auth-js, as registerPasskey() and
// signInWithPasskey() do with the browser's.
import assert from 'node:assert/strict'
import { AuthClient } from '@supabase/auth-js'
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto'

const url = process.argv[2]
const serviceKey = process.argv[3]
assert.ok(url && serviceKey, 'usage: node passkey_test.mjs <gateway url> <service_role key>')
const ORIGIN = 'http://localhost:3000'

// --- a minimal authenticator -------------------------------------------------------------------

const b64url = (bytes) => Buffer.from(bytes).toString('base64url')
const sha256 = (bytes) => createHash('sha256').update(bytes).digest()

// CBOR (RFC 8949) for what an authenticator writes: maps, byte and text strings, small integers.
const head = (major, length) => {
  if (length < 24) return Buffer.from([(major << 5) | length])
  if (length < 256) return Buffer.from([(major << 5) | 24, length])
  const out = Buffer.alloc(3)
  out[0] = (major << 5) | 25
  out.writeUInt16BE(length, 1)
  return out
}
const cbor = (value) => {
  if (Number.isInteger(value)) return value >= 0 ? head(0, value) : head(1, -1 - value)
  if (typeof value === 'string') return Buffer.concat([head(3, Buffer.byteLength(value)), Buffer.from(value)])
  if (Buffer.isBuffer(value)) return Buffer.concat([head(2, value.length), value])
  if (value instanceof Map) {
    const parts = [head(5, value.size)]
    for (const [key, item] of value) parts.push(cbor(key), cbor(item))
    return Buffer.concat(parts)
  }
  throw new Error(`cannot encode ${value}`)
}

class Authenticator {
  constructor () {
    this.credentials = [] // { id, privateKey, userHandle, counter }
  }

  // navigator.credentials.create() with `none` attestation, serialized as auth-js serializes it.
  create (options) {
    assert.equal(options.authenticatorSelection?.residentKey, 'required')
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const jwk = publicKey.export({ format: 'jwk' })
    const id = randomBytes(16)
    const coseKey = new Map([[1, 2], [3, -7], [-1, 1], [-2, Buffer.from(jwk.x, 'base64url')], [-3, Buffer.from(jwk.y, 'base64url')]])
    const authData = Buffer.concat([
      sha256(options.rp.id),
      Buffer.from([0x45]), // user present, user verified, attested credential data
      Buffer.alloc(4), // counter 0
      Buffer.alloc(16), // AAGUID withheld
      Buffer.from([0, id.length]),
      id,
      cbor(coseKey),
    ])
    const clientDataJSON = Buffer.from(JSON.stringify({ type: 'webauthn.create', challenge: options.challenge, origin: ORIGIN, crossOrigin: false }))
    this.credentials.push({ id, privateKey, userHandle: options.user.id, counter: 0, rpId: options.rp.id })
    return {
      id: b64url(id),
      rawId: b64url(id),
      response: {
        attestationObject: b64url(cbor(new Map([['fmt', 'none'], ['attStmt', new Map()], ['authData', authData]]))),
        clientDataJSON: b64url(clientDataJSON),
        transports: ['internal'],
      },
      type: 'public-key',
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    }
  }

  // navigator.credentials.get() for a discoverable sign-in: the device picks its credential.
  get (options) {
    assert.deepEqual(options.allowCredentials ?? [], [])
    const credential = this.credentials[0]
    credential.counter += 1
    const counter = Buffer.alloc(4)
    counter.writeUInt32BE(credential.counter)
    const authData = Buffer.concat([sha256(options.rpId), Buffer.from([0x05]), counter])
    const clientDataJSON = Buffer.from(JSON.stringify({ type: 'webauthn.get', challenge: options.challenge, origin: ORIGIN, crossOrigin: false }))
    const signature = sign('sha256', Buffer.concat([authData, sha256(clientDataJSON)]), credential.privateKey)
    return {
      id: b64url(credential.id),
      rawId: b64url(credential.id),
      response: {
        authenticatorData: b64url(authData),
        clientDataJSON: b64url(clientDataJSON),
        signature: b64url(signature),
        userHandle: credential.userHandle,
      },
      type: 'public-key',
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    }
  }
}

// --- the test ---------------------------------------------------------------------------------

const memory = new Map()
const storage = {
  getItem: (key) => memory.get(key) ?? null,
  setItem: (key, value) => { memory.set(key, value) },
  removeItem: (key) => { memory.delete(key) },
}
const auth = new AuthClient({
  url,
  headers: { apikey: 'anon-key' },
  storage,
  persistSession: true,
  autoRefreshToken: false,
  detectSessionInUrl: false,
  experimental: { passkey: true },
})
const device = new Authenticator()

const email = `node-passkey-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`
let { data, error } = await auth.signUp({ email, password: 'node-password-123' })
assert.equal(error, null, `signUp: ${error?.message}`)
const userId = data.user.id

// registration: options, the device's answer, the stored passkey
;({ data, error } = await auth.passkey.startRegistration())
assert.equal(error, null, `passkey.startRegistration: ${error?.message}`)
assert.equal(data.options.rp.id, 'localhost')
assert.equal(data.options.user.name, email)
assert.equal(Buffer.from(data.options.user.id, 'base64url').toString(), userId, "GoTrue's user handle")
const credential = device.create(data.options)
;({ data, error } = await auth.passkey.verifyRegistration({ challengeId: data.challenge_id, credential }))
assert.equal(error, null, `passkey.verifyRegistration: ${error?.message}`)
assert.equal(data.friendly_name, 'Passkey')
const passkeyId = data.id

;({ data, error } = await auth.passkey.list())
assert.equal(error, null, `passkey.list: ${error?.message}`)
assert.deepEqual(data.map((p) => p.id), [passkeyId])
assert.equal(data[0].last_used_at, undefined)

;({ data, error } = await auth.passkey.update({ passkeyId, friendlyName: 'Node laptop' }))
assert.equal(error, null, `passkey.update: ${error?.message}`)
assert.equal(data.friendly_name, 'Node laptop')

// a passwordless sign-in after signing out
;({ error } = await auth.signOut())
assert.equal(error, null, `signOut: ${error?.message}`)
;({ data, error } = await auth.passkey.startAuthentication())
assert.equal(error, null, `passkey.startAuthentication: ${error?.message}`)
const assertion = device.get(data.options)
;({ data, error } = await auth.passkey.verifyAuthentication({ challengeId: data.challenge_id, credential: assertion }))
assert.equal(error, null, `passkey.verifyAuthentication: ${error?.message}`)
assert.equal(data.user.id, userId)
assert.ok(data.session?.access_token, 'a session')
;({ data, error } = await auth.getUser())
assert.equal(error, null, `getUser after the passkey sign-in: ${error?.message}`)
assert.equal(data.user.id, userId)
const claims = JSON.parse(Buffer.from((await auth.getSession()).data.session.access_token.split('.')[1], 'base64url'))
assert.equal(claims.amr[0].method, 'passkey')
;({ data, error } = await auth.mfa.getAuthenticatorAssuranceLevel())
assert.equal(error, null)
assert.equal(data.currentLevel, 'aal1')

// the same assertion does not sign in twice
;({ data, error } = await auth.passkey.startAuthentication())
;({ data, error } = await auth.passkey.verifyAuthentication({ challengeId: data.challenge_id, credential: assertion }))
assert.equal(error?.status, 400)
assert.equal(error?.code, 'webauthn_verification_failed')

// the admin's view
const admin = new AuthClient({
  url,
  headers: { apikey: 'anon-key', Authorization: `Bearer ${serviceKey}` },
  autoRefreshToken: false,
  persistSession: false,
  experimental: { passkey: true },
}).admin
;({ data, error } = await admin.passkey.listPasskeys({ userId }))
assert.equal(error, null, `admin.passkey.listPasskeys: ${error?.message}`)
assert.equal(data[0].friendly_name, 'Node laptop')
assert.ok(data[0].last_used_at, 'the sign-in is shown')

// the user deletes it; the admin's delete of a gone passkey is a 404
;({ error } = await auth.passkey.delete({ passkeyId }))
assert.equal(error, null, `passkey.delete: ${error?.message}`)
;({ data, error } = await auth.passkey.list())
assert.deepEqual(data, [])
;({ data, error } = await admin.passkey.deletePasskey({ userId, passkeyId }))
assert.equal(error?.status, 404)

console.error('auth-js passkey test passed')
