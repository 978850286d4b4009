'use strict'
// Client logic against a scripted wx (no network, no server): fast and deterministic.
const test = require('node:test')
const assert = require('node:assert/strict')
const { createClient, HuihuaError, taro, uni, fromPlatform } = require('..')
const { createScriptedWx, err } = require('./helpers/scripted-wx')

const BASE = 'https://api.example.com'
const KEY = 'huihua:app:default:session'
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/**
 * A tiny fake huihua: /v1/auth/wechat issues tok-N; `valid` tokens pass, others get 401. Like the
 * real exchange, a code seen before gives the same answer again only with the same
 * Idempotency-Key, else 400 wechat_code_used.
 */
function fakeServer({ reloginCode = 'session_expired', slow = {} } = {}) {
  const valid = new Set()
  const exchanged = new Map() // code -> {key, answer}
  let issued = 0
  const server = {
    valid,
    logins: 0,
    handle: async (option) => {
      const path = option.url.replace(BASE, '')
      if (slow[path]) await sleep(slow[path])
      if (path === '/v1/auth/wechat') {
        const code = option.data && option.data.code
        const key = option.header && option.header['Idempotency-Key']
        const before = exchanged.get(code)
        if (before) return before.key && before.key === key ? before.answer : err(400, 'wechat_code_used')
        server.logins++
        const token = 'tok-' + ++issued
        valid.add(token)
        const answer = { statusCode: 200, data: { user: { id: 'u1' }, session: { id: 's' + issued }, token, bound: false } }
        exchanged.set(code, { key, answer })
        return answer
      }
      const auth = option.header && option.header.Authorization
      const token = auth && auth.replace(/^Bearer /, '')
      if (!token || !valid.has(token)) return err(401, reloginCode)
      return { statusCode: 200, data: { ok: true, token } }
    },
  }
  return server
}

function setup(opts = {}) {
  const server = fakeServer(opts.server)
  const wx = createScriptedWx({ handle: opts.handle || server.handle, ...(opts.wx || {}) })
  const events = { login: [], expired: [], errors: [] }
  const client = createClient({
    baseURL: BASE,
    wx,
    loginInterval: 0,
    hooks: {
      onLogin: (r) => events.login.push(r),
      onSessionExpired: (e) => events.expired.push(e),
      onError: (e) => events.errors.push(e),
    },
    ...(opts.client || {}),
  })
  return { server, wx, client, events }
}

test('no token: a burst of 10 requests shares ONE lazy login', async () => {
  const { wx, client, server, events } = setup()
  const all = await Promise.all(Array.from({ length: 10 }, () => client.request({ url: '/v1/x' })))
  assert.ok(all.every((r) => r.statusCode === 200))
  assert.equal(wx.stats.loginCalls, 1)
  assert.equal(server.logins, 1)
  assert.equal(events.login.length, 1)
  assert.equal(events.expired.length, 0, 'no session expired: there was none')
  assert.equal(JSON.parse(wx.storage.get(KEY)).token, 'tok-1')
})

test('20 parallel requests that all get a session 401 share ONE wx.login and ONE login call, and each replays once', async () => {
  const { wx, client, server, events } = setup({ wx: { delay: 10 } })
  wx.storage.set(KEY, JSON.stringify({ token: 'dead' })) // stored, but the server no longer knows it
  const urls = Array.from({ length: 20 }, (_, i) => '/v1/x?i=' + i)
  const all = await Promise.all(urls.map((url) => client.request({ url })))
  assert.deepEqual(all.map((r) => r.statusCode), Array(20).fill(200))
  assert.ok(all.every((r) => r.data.token === 'tok-1'), 'every replay carried the one new token')
  assert.equal(wx.stats.loginCalls, 1, 'exactly one wx.login')
  assert.equal(server.logins, 1, 'exactly one POST /v1/auth/wechat')
  assert.equal(wx.stats.requests.filter((r) => r.url === BASE + '/v1/auth/wechat').length, 1)
  for (const url of urls) {
    const sent = wx.stats.requests.filter((r) => r.url === BASE + url).map((r) => r.header.Authorization)
    assert.deepEqual(sent, ['Bearer dead', 'Bearer tok-1'], `${url}: once with the dead token, replayed once`)
  }
  assert.equal(events.login.length, 1)
  assert.deepEqual(events.expired.map((e) => e.code), ['session_expired'], 'one expiry, not one per request')
})

test('login() joins a login already in flight, also one started by another client on the same wx', async () => {
  const { wx, client, server } = setup()
  const second = createClient({ baseURL: BASE, wx, loginInterval: 0 })
  const results = await Promise.all([client.login(), client.login(), second.login()])
  assert.equal(wx.stats.loginCalls, 1)
  assert.equal(server.logins, 1)
  assert.deepEqual(results.map((r) => r.session.id), ['s1', 's1', 's1'])
  assert.equal(second.token(), 'tok-1')
})

test('the login call sends the code in a JSON body with X-Session-Transport: header', async () => {
  const { wx, client } = setup()
  await client.login()
  const call = wx.stats.requests[0]
  assert.equal(call.method, 'POST')
  assert.equal(call.url, BASE + '/v1/auth/wechat')
  assert.deepEqual(call.data, { code: 'code-1' })
  assert.equal(call.header['X-Session-Transport'], 'header')
})

const loginCalls = (wx) => wx.stats.requests.filter((r) => r.url === BASE + '/v1/auth/wechat')

test('each login attempt sends its own random Idempotency-Key (128 bits), kept out of storage', async () => {
  const { wx, client } = setup()
  await client.login()
  await client.login()
  const keys = loginCalls(wx).map((r) => r.header['Idempotency-Key'])
  assert.equal(keys.length, 2)
  for (const k of keys) assert.match(k, /^[0-9a-f]{32}$/)
  assert.notEqual(keys[0], keys[1], 'a new key for a new code')
  for (const [k, v] of wx.storage) {
    for (const key of keys) assert.ok(!String(k).includes(key) && !String(v).includes(key), 'key in storage')
  }
  // Nor on any other request.
  await client.request({ url: '/v1/x', method: 'POST' })
  assert.equal(wx.stats.requests.at(-1).header['Idempotency-Key'], undefined)
})

test('a login whose answer was lost is retried with the same code and the same key, and succeeds', async () => {
  for (const lost of ['request:fail interrupted', 'request:fail timeout', 'request:fail ECONNRESET']) {
    const server = fakeServer()
    let left = 1
    const handle = (o) => {
      if (o.url !== BASE + '/v1/auth/wechat' || left-- <= 0) return server.handle(o)
      server.handle(o) // the server exchanged the code...
      return { fail: lost } // ...and the answer was lost
    }
    const { wx, client } = setup({ handle })
    const result = await client.login()
    assert.equal(result.session.id, 's1', `${lost}: the first attempt's session, not a second one`)
    assert.equal(client.token(), 'tok-1')
    assert.equal(wx.stats.loginCalls, 1, 'no second wx.login')
    assert.equal(server.logins, 1)
    const [a, b] = loginCalls(wx)
    assert.deepEqual(b.data, a.data, 'same code')
    assert.equal(b.header['Idempotency-Key'], a.header['Idempotency-Key'], `${lost}: same key`)
  }
})

test('a login interrupted every time gives up after 3 tries of the one code and key', async () => {
  const server = fakeServer()
  const { wx, client, events } = setup({
    wx: { withVisibility: false },
    handle: (o) => (o.url === BASE + '/v1/auth/wechat' ? { fail: 'request:fail interrupted' } : server.handle(o)),
  })
  await assert.rejects(client.login(), (e) => e.code === 'interrupted')
  const calls = loginCalls(wx)
  assert.equal(calls.length, 3)
  assert.equal(new Set(calls.map((r) => r.header['Idempotency-Key'])).size, 1)
  assert.equal(wx.stats.loginCalls, 1)
  assert.equal(events.errors.length, 1, 'reported once')
})

test('the key comes from wx.getRandomValues where the platform has it', async () => {
  const { wx, client } = setup()
  const asked = []
  wx.getRandomValues = (o) => {
    asked.push(o.length)
    setTimeout(() => o.success({ randomValues: Uint8Array.from({ length: o.length }, (_, i) => i + 0xa0).buffer, errMsg: 'getRandomValues:ok' }), 1)
  }
  await client.login()
  assert.deepEqual(asked, [16])
  assert.equal(loginCalls(wx)[0].header['Idempotency-Key'], 'a0a1a2a3a4a5a6a7a8a9aaabacadaeaf')
})

test('a wx.getRandomValues that fails, hangs, or hands back zeros or too few bytes is not used', { timeout: 10000 }, async () => {
  const broken = {
    fails: (o) => o.fail({ errMsg: 'getRandomValues:fail' }),
    throws: () => {
      throw new Error('not supported')
    },
    zeros: (o) => o.success({ randomValues: new ArrayBuffer(o.length) }),
    short: (o) => o.success({ randomValues: Uint8Array.of(1, 2, 3).buffer }),
    nothing: (o) => o.success({}),
    hangs: () => undefined,
  }
  for (const [name, impl] of Object.entries(broken)) {
    const { wx, client } = setup()
    wx.getRandomValues = impl
    await client.login()
    const key = loginCalls(wx)[0].header['Idempotency-Key']
    assert.match(key, /^[0-9a-f]{32}$/, name)
    assert.notEqual(key, '0'.repeat(32), name)
  }
})

test('without wx.getRandomValues or a global crypto, the key is still 128 random bits', async (t) => {
  const saved = Object.getOwnPropertyDescriptor(globalThis, 'crypto')
  Object.defineProperty(globalThis, 'crypto', { value: undefined, configurable: true, writable: true })
  t.after(() => Object.defineProperty(globalThis, 'crypto', saved))
  const random = Math.random
  let calls = 0
  Math.random = () => (calls++, random())
  t.after(() => (Math.random = random))
  const { wx, client } = setup()
  for (let i = 0; i < 20; i++) await client.login()
  const keys = loginCalls(wx).map((r) => r.header['Idempotency-Key'])
  assert.ok(keys.every((k) => /^[0-9a-f]{32}$/.test(k)))
  assert.equal(new Set(keys).size, 20)
  assert.ok(calls >= 20 * 16, 'Math.random was the source')
})

test('a 401 without an error code, or with a non-session code, does not log in again', async () => {
  const answers = [{ statusCode: 401, data: 'Unauthorized' }, err(401, 'invalid_credentials')]
  const server = fakeServer()
  const { client, wx } = setup({
    handle: (o) => (o.url.endsWith('/v1/auth/wechat') ? server.handle(o) : answers.shift()),
  })
  await client.login()
  assert.equal((await client.request({ url: '/a' })).statusCode, 401)
  assert.equal((await client.request({ url: '/b' })).statusCode, 401)
  assert.equal(wx.stats.loginCalls, 1)
})

test('each request replays once: a session that keeps failing gives back the 401', async () => {
  const server = fakeServer()
  const { client, wx, events } = setup({
    handle: (o) => (o.url.endsWith('/v1/auth/wechat') ? server.handle(o) : err(401, 'session_revoked')),
  })
  const res = await client.request({ url: '/v1/x' })
  assert.equal(res.statusCode, 401)
  // lazy login, first try, one re-login, one replay
  assert.equal(wx.stats.loginCalls, 2)
  assert.equal(wx.stats.requests.filter((r) => r.url === BASE + '/v1/x').length, 2)
  assert.deepEqual(events.expired.map((e) => e.code), ['session_revoked'])
})

test('a late 401 for a token already replaced replays with the new token, no second login', async () => {
  const { client, wx, server } = setup({ server: { slow: { '/slow': 150 } } })
  await client.login()
  server.valid.clear() // server-side revocation of tok-1
  const slow = client.request({ url: '/slow' }) // sent with tok-1, answers 401 late
  await sleep(20)
  const fast = await client.request({ url: '/fast' }) // 401 → re-login → tok-2 → replay
  assert.equal(fast.statusCode, 200)
  const late = await slow
  assert.equal(late.statusCode, 200)
  assert.equal(late.data.token, 'tok-2')
  assert.equal(wx.stats.loginCalls, 2, 'first login + ONE re-login')
})

test('wx.login is throttled: two logins are at least loginInterval apart', async () => {
  const { client, wx } = setup({ client: { loginInterval: 250 } })
  await client.login()
  await client.login()
  const [a, b] = wx.stats.loginTimes
  assert.ok(b - a >= 240, `wx.login calls ${b - a} ms apart`)
})

test('a failing wx.login rejects every waiting request with one typed error, reported once', async () => {
  const { client, events } = setup({ wx: { codes: false } })
  const results = await Promise.allSettled(Array.from({ length: 5 }, () => client.request({ url: '/v1/x' })))
  assert.ok(results.every((r) => r.status === 'rejected'))
  for (const r of results) {
    assert.ok(r.reason instanceof HuihuaError)
    assert.equal(r.reason.code, 'wx_login_failed')
  }
  assert.equal(events.errors.length, 1)
})

test('a token rotated in X-Session-Token (any case) is stored; a stale rotation is not', async () => {
  let rotate = 'tok-rotated'
  const server = fakeServer()
  const { client, wx } = setup({
    handle: (o) => {
      if (o.url.endsWith('/v1/auth/wechat')) return server.handle(o)
      const h = {}
      if (rotate) h['x-session-token'] = rotate
      rotate = null
      return { statusCode: 200, data: {}, header: h }
    },
  })
  await client.login()
  await client.request({ url: '/v1/x' })
  assert.equal(client.token(), 'tok-rotated')
  assert.equal(JSON.parse(wx.storage.get(KEY)).token, 'tok-rotated')
  await client.request({ url: '/v1/x' })
  assert.equal(wx.stats.requests.at(-1).header.Authorization, 'Bearer tok-rotated')
})

test('the token goes only to baseURL, in a header, never in a URL', async () => {
  const { client, wx } = setup()
  await client.request({ url: '/v1/x', data: { a: 1 } })
  await client.request({ url: 'https://elsewhere.example.org/v1/x' })
  await client.request({ url: 'https://api.example.com.evil.org/v1/x' })
  const token = client.token()
  for (const r of wx.stats.requests) assert.ok(!r.url.includes(token), r.url)
  const [, own, other, lookalike] = wx.stats.requests
  assert.equal(own.header.Authorization, 'Bearer ' + token)
  assert.equal(other.header.Authorization, undefined)
  assert.equal(lookalike.header.Authorization, undefined)
})

test('a request interrupted in the background is retried when the app comes back', async () => {
  let first = true
  const server = fakeServer()
  const { client, wx } = setup({
    handle: (o) => {
      if (!o.url.endsWith('/v1/x') || !first) return server.handle(o)
      first = false
      return { fail: 'request:fail interrupted' }
    },
  })
  await client.login()
  wx._hide()
  let settled = false
  const p = client.request({ url: '/v1/x' }).then((r) => ((settled = true), r))
  await sleep(60)
  assert.equal(settled, false, 'waits for onAppShow')
  wx._show()
  const res = await p
  assert.equal(res.statusCode, 200)
  assert.equal(wx.stats.requests.filter((r) => r.url.endsWith('/v1/x')).length, 2)
})

test('interrupted without visibility events is retried a bounded number of times', async () => {
  const server = fakeServer()
  const { client } = setup({
    wx: { withVisibility: false },
    handle: (o) => (o.url.endsWith('/v1/x') ? { fail: 'request:fail interrupted' } : server.handle(o)),
  })
  await assert.rejects(client.request({ url: '/v1/x' }), (e) => e.code === 'interrupted')
})

/** A server whose answers to `path` are lost once, `times` times, as wx reports a backgrounded request. */
function losingServer(path, times = 1) {
  const server = fakeServer()
  let left = times
  const handle = (o) => {
    if (o.url.split('?')[0] === BASE + path && left > 0) {
      left--
      server.handle(o) // it reached the server and was done there...
      return { fail: 'request:fail interrupted' } // ...but the answer never came back
    }
    return server.handle(o)
  }
  return { server, handle }
}

const sentTo = (wx, path) => wx.stats.requests.filter((r) => r.url.split('?')[0] === BASE + path)

test('interrupted POST / PUT / DELETE / PATCH are never sent again: HuihuaError interrupted', async () => {
  const cases = [
    { method: 'POST' },
    { method: 'PUT' },
    { method: 'DELETE' },
    { method: 'PATCH' }, // goes out as POST + X-HTTP-Method-Override: PATCH
    { method: 'PATCH', client: { methodOverride: false } },
    { method: 'post' },
  ]
  for (const c of cases) {
    const { handle } = losingServer('/v1/orders')
    const { client, wx, events } = setup({ handle, client: c.client })
    await client.login()
    await assert.rejects(client.request({ url: '/v1/orders', method: c.method, data: { item: 1 } }), (e) => {
      assert.ok(e instanceof HuihuaError)
      assert.equal(e.code, 'interrupted')
      assert.match(e.errMsg, /interrupted/)
      assert.match(e.message, /not sent again/)
      return true
    })
    assert.equal(sentTo(wx, '/v1/orders').length, 1, `${c.method}: sent once`)
    assert.deepEqual(events.errors.map((e) => e.code), ['interrupted'], 'reported once')
  }
})

test('an interrupted write is not re-sent when the app comes back either', async () => {
  const { handle } = losingServer('/v1/orders')
  const { client, wx } = setup({ handle })
  await client.login()
  wx._hide()
  const result = client.request({ url: '/v1/orders', method: 'POST', data: { item: 1 } }).then(
    () => 'resolved',
    (e) => e.code,
  )
  const early = await Promise.race([result, sleep(100).then(() => 'still waiting')])
  assert.equal(early, 'interrupted', 'rejected at once, not parked until onAppShow')
  wx._show()
  await sleep(30)
  assert.equal(sentTo(wx, '/v1/orders').length, 1)
})

test('a write the caller gave an Idempotency-Key is retried with the same key', async () => {
  for (const name of ['Idempotency-Key', 'idempotency-key']) {
    const { handle } = losingServer('/v1/orders')
    const { client, wx } = setup({ handle })
    await client.login()
    const res = await client.request({ url: '/v1/orders', method: 'POST', data: { item: 1 }, header: { [name]: 'order-42' } })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(sentTo(wx, '/v1/orders').map((r) => r.header[name]), ['order-42', 'order-42'])
  }
  // An empty key is no key.
  const { handle } = losingServer('/v1/orders')
  const { client, wx } = setup({ handle })
  await client.login()
  await assert.rejects(
    client.request({ url: '/v1/orders', method: 'POST', header: { 'Idempotency-Key': ' ' } }),
    (e) => e.code === 'interrupted',
  )
  assert.equal(sentTo(wx, '/v1/orders').length, 1)
})

test('interrupted GET / HEAD / OPTIONS are retried', async () => {
  for (const method of ['GET', 'HEAD', 'OPTIONS', undefined]) {
    const { handle } = losingServer('/v1/x')
    const { client, wx } = setup({ handle })
    await client.login()
    const res = await client.request({ url: '/v1/x', method })
    assert.equal(res.statusCode, 200, String(method))
    assert.equal(sentTo(wx, '/v1/x').length, 2, String(method))
  }
  // A request that asks the server to act as another method is not a read.
  const { handle } = losingServer('/v1/x', 2)
  const { client, wx } = setup({ handle })
  await client.login()
  await assert.rejects(
    client.request({ url: '/v1/x', method: 'POST', header: { 'X-HTTP-Method-Override': 'GET' } }),
    (e) => e.code === 'interrupted',
  )
  await assert.rejects(
    client.request({ url: '/v1/x', method: 'GET', header: { 'X-HTTP-Method-Override': 'DELETE' } }),
    (e) => e.code === 'interrupted',
  )
  assert.equal(sentTo(wx, '/v1/x').length, 2)
})

test('a write refused with a session 401 is still replayed once after the re-login (the server did not do it)', async () => {
  const { client, wx, server } = setup()
  await client.login()
  server.valid.clear()
  const res = await client.request({ url: '/v1/orders', method: 'POST', data: { item: 1 } })
  assert.equal(res.statusCode, 200)
  assert.deepEqual(sentTo(wx, '/v1/orders').map((r) => r.header.Authorization), ['Bearer tok-1', 'Bearer tok-2'])
})

test('PATCH goes out as POST + X-HTTP-Method-Override (wx.request has no PATCH)', async () => {
  const { client, wx } = setup()
  await client.request({ url: '/v1/session/data', method: 'PATCH', data: { incr: { n: 1 } } })
  const last = wx.stats.requests.at(-1)
  assert.equal(last.method, 'POST')
  assert.equal(last.header['X-HTTP-Method-Override'], 'PATCH')
  const c2 = setup({ client: { methodOverride: false } })
  await c2.client.request({ url: '/v1/session/data', method: 'PATCH', data: {} })
  assert.equal(c2.wx.stats.requests.at(-1).method, 'PATCH')
})

test('storage key is namespaced by appId and env', () => {
  const wx = createScriptedWx({ handle: () => null })
  wx.getAccountInfoSync = () => ({ miniProgram: { appId: 'wxabc', envVersion: 'trial' } })
  assert.equal(createClient({ baseURL: BASE, wx }).storageKey, 'huihua:wxabc:trial:session')
  assert.equal(createClient({ baseURL: BASE, wx, env: 'staging' }).storageKey, 'huihua:wxabc:staging:session')
  assert.equal(createClient({ baseURL: BASE, wx, storageKey: 'k' }).storageKey, 'k')
  const bare = createScriptedWx({ handle: () => null })
  bare.getAccountInfoSync = () => {
    throw new Error('not here')
  }
  assert.equal(createClient({ baseURL: BASE, wx: bare }).storageKey, KEY)
})

test('a stored token is used as is, even past the expiry last seen (the server slides it)', async () => {
  const { client, wx, server } = setup()
  server.valid.add('old')
  wx.storage.set(KEY, JSON.stringify({ token: 'old', expiresAt: Date.now() - 1000 }))
  const res = await client.request({ url: '/v1/x' })
  assert.equal(res.statusCode, 200)
  assert.equal(wx.stats.loginCalls, 0)
  assert.equal(wx.stats.requests[0].header.Authorization, 'Bearer old')
})

test('hooks that throw do not break the client', async () => {
  const server = fakeServer()
  const wx = createScriptedWx({ handle: server.handle })
  const boom = () => {
    throw new Error('hook bug')
  }
  const client = createClient({ baseURL: BASE, wx, hooks: { onLogin: boom, onError: boom, onSessionExpired: boom } })
  assert.equal((await client.request({ url: '/v1/x' })).statusCode, 200)
})

test('maxConcurrent caps requests in flight; the login call is not starved', async () => {
  const { client, wx } = setup({ client: { maxConcurrent: 3 }, wx: { delay: 10 } })
  const all = await Promise.all(Array.from({ length: 12 }, () => client.request({ url: '/v1/x' })))
  assert.ok(all.every((r) => r.statusCode === 200))
  assert.equal(wx.stats.maxInFlight, 3)
})

test('maxConcurrent: 50 is clamped to WeChat\'s 10: 50 parallel requests, never more than 10 in flight', async () => {
  const { client, wx } = setup({ client: { maxConcurrent: 50 }, wx: { delay: 10 } })
  await client.login()
  wx.stats.maxInFlight = 0
  const all = await Promise.all(Array.from({ length: 50 }, (_, i) => client.request({ url: '/v1/x?i=' + i })))
  assert.equal(all.length, 50)
  assert.ok(all.every((r) => r.statusCode === 200))
  assert.ok(wx.stats.maxInFlight <= 10, `max in flight ${wx.stats.maxInFlight}`)
  assert.equal(wx.stats.maxInFlight, 10, 'the queue fills the 10 slots it has')
  assert.equal(wx.stats.inFlight, 0)
})

test('clients on one runtime share the 10 slots, however many adapted objects wrap it', async () => {
  const server = fakeServer()
  const wx = createScriptedWx({ handle: server.handle, delay: 10 })
  const clients = [
    createClient({ baseURL: BASE, wx, maxConcurrent: 50, loginInterval: 0 }),
    createClient({ baseURL: BASE, adapter: fromPlatform(wx), maxConcurrent: 50, loginInterval: 0 }),
    createClient({ baseURL: BASE, adapter: fromPlatform(wx), maxConcurrent: 50, loginInterval: 0 }),
  ]
  await clients[0].login()
  wx.stats.maxInFlight = 0
  const all = await Promise.all(Array.from({ length: 45 }, (_, i) => clients[i % 3].request({ url: '/v1/x' })))
  assert.ok(all.every((r) => r.statusCode === 200))
  assert.ok(wx.stats.maxInFlight <= 10, `max in flight ${wx.stats.maxInFlight}`)
  assert.equal(wx.stats.loginCalls, 1, 'one session for the runtime and storage key')
})

test('a timed-out request that wx cannot abort keeps its slot until wx reports back', async () => {
  // A platform that ignores `timeout` and returns no task (no abort()): after the SDK's deadline
  // the request is still running on the phone and still counts against WeChat's 10.
  const server = fakeServer({ slow: { '/slow': 700 } })
  const { client, wx } = setup({ handle: server.handle })
  await client.login()
  const request = wx.request
  wx.request = (o) => {
    request.call(wx, o)
  }
  wx.stats.maxInFlight = 0
  const all = await Promise.allSettled(Array.from({ length: 12 }, () => client.request({ url: '/slow', timeout: 10 })))
  assert.ok(all.every((r) => r.status === 'rejected' && r.reason.code === 'timeout'))
  assert.ok(wx.stats.maxInFlight <= 10, `max in flight ${wx.stats.maxInFlight}`)
  await sleep(800)
  assert.equal(wx.stats.inFlight, 0)
  assert.equal((await client.request({ url: '/v1/x' })).statusCode, 200, 'every slot came back')
})

test('a maxConcurrent that is not a number falls back to 10 (never a queue that cannot start)', async () => {
  for (const maxConcurrent of [NaN, 'many', Infinity, -3, 0]) {
    const { client, wx } = setup({ client: { maxConcurrent }, wx: { delay: 5 } })
    const all = await Promise.all(Array.from({ length: 15 }, () => client.request({ url: '/v1/x' })))
    assert.ok(all.every((r) => r.statusCode === 200), String(maxConcurrent))
    assert.ok(wx.stats.maxInFlight <= 10, `${maxConcurrent}: max in flight ${wx.stats.maxInFlight}`)
  }
})

test('Taro adapter: Promise-only request/login are mapped to callbacks', async () => {
  const server = fakeServer()
  const storage = new Map()
  let logins = 0
  const Taro = {
    request: (o) => Promise.resolve(server.handle(o)).then((r) => ({ ...r, header: undefined, headers: r.header || {} })),
    login: () => Promise.resolve({ code: 'c' + ++logins, errMsg: 'login:ok' }),
    getRandomValues: ({ length }) => Promise.resolve({ randomValues: new Uint8Array(length).fill(7).buffer }),
    getStorageSync: (k) => storage.get(k) || '',
    setStorageSync: (k, v) => storage.set(k, v),
    removeStorageSync: (k) => storage.delete(k),
  }
  const sent = []
  const request = Taro.request
  Taro.request = (o) => (sent.push(o), request(o))
  const client = createClient({ baseURL: BASE, adapter: taro(Taro), loginInterval: 0 })
  const res = await client.request({ url: '/v1/x' })
  assert.equal(sent[0].header['Idempotency-Key'], '07'.repeat(16), 'Taro.getRandomValues (Promise form) was used')
  assert.equal(res.statusCode, 200)
  assert.equal(logins, 1)
  assert.ok(storage.get(KEY))
  assert.equal(taro(Taro), taro(Taro), 'one adapted object per platform object')
})

test('uni-app adapter: [err, res] Promises and callback errors', async () => {
  const server = fakeServer()
  const storage = new Map()
  let down = false
  const uniApi = {
    request: (o) =>
      Promise.resolve(server.handle(o)).then((r) => (down ? [{ errMsg: 'request:fail net down' }, undefined] : [null, r])),
    login: (o) => o.success({ code: 'c', errMsg: 'login:ok' }),
    getStorageSync: (k) => storage.get(k) || '',
    setStorageSync: (k, v) => storage.set(k, v),
    removeStorageSync: (k) => storage.delete(k),
  }
  const client = createClient({ baseURL: BASE, adapter: uni(uniApi), loginInterval: 0 })
  assert.equal((await client.request({ url: '/v1/x' })).statusCode, 200)
  down = true
  await assert.rejects(client.request({ url: '/v1/x' }), (e) => e.code === 'network' && /net down/.test(e.message))
})

test('createClient without wx or a global wx fails clearly', () => {
  assert.throws(() => createClient({ baseURL: BASE }), /no wx object/)
  assert.throws(() => createClient({ wx: {} }), /baseURL/)
})

test('paths: every route the client calls itself can be moved; loginPath still works and paths.login wins', async () => {
  const seen = []
  const handle = async (option) => {
    const path = option.url.replace(BASE, '')
    seen.push(option.method + ' ' + path)
    if (path === '/api/login') {
      return { statusCode: 200, data: { user: { id: 'u1' }, session: { id: 's1' }, token: 'tok-1', bound: false } }
    }
    if (path === '/api/me') return { statusCode: 200, data: { user: { id: 'u1' }, session: { id: 's1' } } }
    if (path === '/api/bind') return { statusCode: 200, data: { user: { id: 'u1' }, session: { id: 's2' }, token: 'tok-2' } }
    if (path === '/api/phone') return { statusCode: 200, data: { user: { id: 'u1', phone: '138' } } }
    if (path === '/api/logout') return { statusCode: 204, data: '' }
    return err(404, 'not_found')
  }
  const paths = { login: '/api/login', me: '/api/me', logout: '/api/logout', bind: '/api/bind', phone: '/api/phone' }
  const { client, events } = setup({ handle, client: { loginPath: '/old/login', paths } })
  await client.login()
  assert.equal((await client.session()).session.id, 's1')
  await client.bind('alice', 'pw')
  assert.equal((await client.bindPhone('c')).user.phone, '138')
  await client.logout()
  assert.deepEqual(seen, ['POST /api/login', 'GET /api/me', 'POST /api/bind', 'POST /api/phone', 'POST /api/logout'])
  assert.equal(events.errors.length, 0)

  // The older loginPath alone still moves the login, and a partial `paths` keeps the other defaults.
  seen.length = 0
  const wx2 = createScriptedWx({ handle })
  const old = createClient({ baseURL: BASE, wx: wx2, loginInterval: 0, storageKey: 'k2', loginPath: '/api/login', paths: { me: '/api/me' } })
  await old.login()
  await old.session()
  await old.logout()
  assert.deepEqual(seen, ['POST /api/login', 'GET /api/me', 'POST /v1/auth/logout'])
})
