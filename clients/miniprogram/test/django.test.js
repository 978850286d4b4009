'use strict'
// The SDK, unchanged, against the Django tutorial served by a real `runserver` (huihua's /v1 API
// mounted with one include), with WeChat on a real emulator.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { createClient } = require('..')
const { createFakeWx } = require('./helpers/fake-wx')
const { startDjango } = require('./helpers/servers')

const T = { timeout: 60000 }
let S

before(async () => {
  S = await startDjango()
})

after(async () => {
  if (S) await S.stop()
})

test('login, session, session data (PATCH as POST + override), phone, logout: all against Django', T, async () => {
  const phone = {}
  const wx = createFakeWx({ emulatorURL: S.emulatorURL, phone })
  const errors = []
  const client = createClient({ baseURL: S.baseURL, wx, hooks: { onError: (e) => errors.push(e) } })

  const result = await client.login()
  assert.equal(typeof result.user.id, 'string')
  assert.equal(result.bound, false)
  assert.ok(client.token())

  const state = await client.session()
  assert.equal(state.user.id, result.user.id)
  assert.ok(state.session.id && state.session.expires_at)

  const bumps = await Promise.all(
    Array.from({ length: 5 }, () => client.request({ url: '/v1/session/data', method: 'PATCH', data: { incr: { counter: 1 } } })),
  )
  assert.deepEqual(bumps.map((r) => r.statusCode), [200, 200, 200, 200, 200])
  const data = await client.request({ url: '/v1/session/data' })
  assert.deepEqual(data.data, { data: { counter: 5 } }, 'five atomic increments, none lost')

  const code = await fetch(S.emulatorURL + '/_emulator/phone-code', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ openid: phone.openid, phone: '13800000000' }),
  }).then((r) => r.json())
  const withPhone = await client.bindPhone(code.code)
  assert.equal(withPhone.user.phone, '13800000000')

  const missing = await client.request({ url: '/v1/nope' })
  assert.equal(missing.statusCode, 404)
  assert.equal(missing.data.error.code, 'not_found')

  await client.logout()
  assert.equal(client.token(), null)
  assert.equal(await client.session(), null)
  assert.deepEqual(errors, [])
})
