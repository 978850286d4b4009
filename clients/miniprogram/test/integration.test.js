'use strict'
// The SDK against a REAL `huihua serve` + `huihua emulator` (started here with `uv run`), through
// a wx whose request does real HTTP and whose login asks the emulator for a code.
const { describe, test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')
const crypto = require('node:crypto')
const { createClient, HuihuaError } = require('..')
const { createFakeWx } = require('./helpers/fake-wx')
const { startServers, freePort, json, code2SessionCalls, recordingProxy, APPID } = require('./helpers/servers')
const { loadExample } = require('./helpers/example-runtime')

const KEY = `huihua:${APPID}:develop:session`
const T = { timeout: 30000 }
let S // the servers

const unhandled = []
process.on('unhandledRejection', (e) => unhandled.push(e))

function phoneAndClient({ storage = new Map(), phone = {}, wxOptions = {}, clientOptions = {}, baseURL } = {}) {
  const wx = createFakeWx({ emulatorURL: S.emulatorURL, storage, phone, ...wxOptions })
  const events = { login: [], expired: [], errors: [] }
  const client = createClient({
    baseURL: baseURL || S.baseURL,
    wx,
    hooks: {
      onLogin: (r) => events.login.push(r),
      onSessionExpired: (e) => events.expired.push(e),
      onError: (e) => events.errors.push(e),
    },
    ...clientOptions,
  })
  return { wx, client, events, storage, phone }
}

const bearer = (token) => ({ Authorization: 'Bearer ' + token })
const admin = () => ({ 'X-Service-Key': S.serviceKey })

before(async () => {
  S = await startServers()
})

after(async () => {
  if (S) await S.stop()
  assert.deepEqual(unhandled, [], 'no unhandled rejections')
})

describe('login and the stored token', () => {
  test('first login, then a restarted client reuses the stored token without wx.login', T, async () => {
    const first = phoneAndClient()
    const c2sBefore = (await code2SessionCalls(S.emulatorURL)).length
    const result = await first.client.login()
    assert.ok(result.user.id)
    assert.equal(result.bound, false)
    assert.equal(first.events.login.length, 1)
    const stored = JSON.parse(first.storage.get(KEY))
    assert.ok(stored.token && stored.token.length > 20)
    assert.equal(stored.user.id, result.user.id)
    const me = await first.client.request({ url: '/v1/auth/me' })
    assert.equal(me.statusCode, 200)
    assert.equal(me.data.user.id, result.user.id)

    // "Restart": new wx object, new client, same storage and phone.
    const again = phoneAndClient({ storage: first.storage, phone: first.phone })
    const me2 = await again.client.request({ url: '/v1/auth/me' })
    assert.equal(me2.statusCode, 200)
    assert.equal(me2.data.user.id, result.user.id)
    assert.equal(me2.data.session.id, result.session.id)
    assert.equal(again.wx.stats.loginCalls, 0, 'no wx.login after a restart')
    assert.equal((await code2SessionCalls(S.emulatorURL)).length - c2sBefore, 1)
    const session = await again.client.session()
    assert.equal(session.user.id, result.user.id)
    // Never in a URL.
    for (const r of [...first.wx.stats.requests, ...again.wx.stats.requests]) assert.ok(!r.url.includes(stored.token))
    assert.equal(me2.header['Cache-Control'] || me2.header['cache-control'], 'no-store')
  })

  test('server-side revocation, then 20 parallel requests: all succeed on ONE wx.login and ONE code exchange', T, async () => {
    const { wx, client, events } = phoneAndClient()
    const { user } = await client.login()
    const oldToken = client.token()
    const revoked = await json('DELETE', `${S.baseURL}/v1/admin/users/${user.id}/sessions`, { headers: admin() })
    assert.equal(revoked.status, 204)
    const logins = wx.stats.loginCalls
    const c2s = (await code2SessionCalls(S.emulatorURL)).length
    const requestsBefore = wx.stats.requests.length

    const answers = await Promise.all(Array.from({ length: 20 }, () => client.request({ url: '/v1/auth/me' })))

    assert.deepEqual(answers.map((a) => a.statusCode), Array(20).fill(200))
    assert.ok(answers.every((a) => a.data.user.id === user.id))
    assert.equal(wx.stats.loginCalls - logins, 1, 'exactly one wx.login')
    assert.equal((await code2SessionCalls(S.emulatorURL)).length - c2s, 1, 'exactly one jscode2session')
    assert.equal(events.expired.length, 1)
    assert.equal(events.expired[0].code, 'session_revoked')
    assert.notEqual(client.token(), oldToken)
    // at most: each of the 20 once with the dead token, the login call, each replayed once
    assert.ok(wx.stats.requests.length - requestsBefore <= 41, `${wx.stats.requests.length - requestsBefore} calls`)
    assert.ok(wx.stats.maxInFlight <= 10)
  })

  test('no token yet: a burst of 15 requests triggers one lazy login', T, async () => {
    const { wx, client } = phoneAndClient()
    const c2s = (await code2SessionCalls(S.emulatorURL)).length
    const answers = await Promise.all(Array.from({ length: 15 }, () => client.request({ url: '/v1/auth/me' })))
    assert.ok(answers.every((a) => a.statusCode === 200))
    assert.equal(new Set(answers.map((a) => a.data.session.id)).size, 1)
    assert.equal(wx.stats.loginCalls, 1)
    assert.equal((await code2SessionCalls(S.emulatorURL)).length - c2s, 1)
  })
})

describe('the platform limits', () => {
  test('30 parallel requests: never more than 10 in flight', T, async () => {
    const { wx, client } = phoneAndClient()
    await client.login()
    wx.stats.maxInFlight = 0
    const answers = await Promise.all(Array.from({ length: 30 }, () => client.request({ url: '/v1/session/data' })))
    assert.ok(answers.every((a) => a.statusCode === 200))
    assert.ok(wx.stats.maxInFlight <= 10, `max in flight ${wx.stats.maxInFlight}`)
    assert.equal(wx.stats.maxInFlight, 10, 'the queue fills the 10 slots it has')
  })

  test('server unreachable (closed port): a clean typed error through onError, no crash', T, async () => {
    const port = await freePort() // nobody listens there
    const storage = new Map([[KEY, JSON.stringify({ token: 'some-token' })]])
    const { client, events } = phoneAndClient({ storage, baseURL: `http://127.0.0.1:${port}` })
    await assert.rejects(client.request({ url: '/v1/auth/me' }), (e) => {
      assert.ok(e instanceof HuihuaError)
      assert.equal(e.code, 'network')
      assert.match(e.errMsg, /request:fail/)
      return true
    })
    assert.equal(events.errors.length, 1)
    assert.equal(events.errors[0].code, 'network')
    // Login against it fails cleanly too (wx.login works, the exchange cannot reach the server).
    const fresh = phoneAndClient({ baseURL: `http://127.0.0.1:${port}` })
    await assert.rejects(fresh.client.login(), (e) => e.code === 'network')
    assert.equal(fresh.client.token(), null)
    assert.ok(fresh.events.errors.length >= 1)
    // The client still works afterwards against a live server (same storage key, new base).
    assert.equal(storage.get(KEY), JSON.stringify({ token: 'some-token' }), 'a network error does not drop the token')
  })

  test('a server that accepts and never answers: request times out (wx timeout and the SDK deadline)', T, async (t) => {
    const sockets = []
    const closed = []
    const stall = net.createServer((s) => {
      sockets.push(s)
      s.resume() // read (and ignore) the request, so the client's abort shows up as 'close'
      s.on('close', () => closed.push(s))
    })
    await new Promise((r) => stall.listen(0, '127.0.0.1', r))
    t.after(() => {
      sockets.forEach((s) => s.destroy())
      stall.close()
    })
    const base = `http://127.0.0.1:${stall.address().port}`
    const storage = () => new Map([[KEY, JSON.stringify({ token: 'some-token' })]])

    const honest = phoneAndClient({ storage: storage(), baseURL: base, clientOptions: { timeout: 300 } })
    let started = Date.now()
    await assert.rejects(honest.client.request({ url: '/v1/auth/me' }), (e) => e.code === 'timeout')
    assert.ok(Date.now() - started < 2000)
    assert.equal(honest.events.errors[0].code, 'timeout')

    // A platform that ignores `timeout` (old base library): the SDK's own deadline aborts it.
    const deaf = phoneAndClient({
      storage: storage(),
      baseURL: base,
      wxOptions: { honourTimeout: false },
      clientOptions: { timeout: 300 },
    })
    started = Date.now()
    await assert.rejects(deaf.client.request({ url: '/v1/auth/me', timeout: 200 }), (e) => e.code === 'timeout')
    assert.ok(Date.now() - started < 2000)
    await new Promise((r) => setTimeout(r, 50))
    assert.equal(closed.length, sockets.length, 'the stalled connections were aborted')
    assert.equal(deaf.wx.stats.inFlight, 0)
  })

  test('storage that throws on every call: the client keeps the session in memory', T, async () => {
    const { wx, client, events } = phoneAndClient({ wxOptions: { storageThrows: true } })
    const first = await client.request({ url: '/v1/auth/me' }) // reads storage, logs in, writes storage
    assert.equal(first.statusCode, 200)
    const { user } = first.data
    const answers = await Promise.all(Array.from({ length: 5 }, () => client.request({ url: '/v1/auth/me' })))
    assert.ok(answers.every((a) => a.statusCode === 200 && a.data.user.id === user.id))
    assert.equal(wx.stats.loginCalls, 1)
    const storageErrors = events.errors.filter((e) => e.code === 'storage')
    assert.equal(storageErrors.length, 1, 'reported once')
    await client.logout()
    assert.equal(client.token(), null)
  })

  test('storage that throws only on write: memory wins, reads still work', T, async () => {
    const { wx, client } = phoneAndClient({ wxOptions: { storageThrows: { set: true } } })
    await client.login()
    assert.equal((await client.request({ url: '/v1/auth/me' })).statusCode, 200)
    assert.equal(wx.stats.loginCalls, 1)
  })
})

describe('account features', () => {
  test('logout: token removed from storage, the server session is dead', T, async () => {
    const { wx, client, storage } = phoneAndClient()
    await client.login()
    const token = client.token()
    assert.ok(storage.has(KEY))
    await client.logout()
    assert.equal(storage.has(KEY), false)
    assert.equal(client.token(), null)
    assert.equal(await client.session({ cached: true }), null)
    assert.equal(await client.session(), null, 'session() does not log in by itself')
    const me = await json('GET', S.baseURL + '/v1/auth/me', { headers: bearer(token) })
    assert.equal(me.status, 401)
    assert.ok(['session_revoked', 'not_authenticated', 'session_expired'].includes(me.data.error.code))
    assert.equal(wx.stats.loginCalls, 1)
  })

  test('bind to a password account: token rotates, later WeChat logins come back bound', T, async () => {
    const username = 'mp_' + crypto.randomBytes(4).toString('hex')
    const password = 'correct horse battery staple'
    const created = await json('POST', S.baseURL + '/v1/accounts', { body: { username, password } })
    assert.equal(created.status, 201, JSON.stringify(created.data))
    const { client, storage, phone } = phoneAndClient()
    await client.login()
    const before = client.token()

    await assert.rejects(client.bind(username, 'wrong password!!'), (e) => e.code === 'http' && e.statusCode === 403)
    const bound = await client.bind(username, password)
    assert.equal(bound.user.username, username)
    assert.equal(bound.user.id, created.data.user.id)
    const after = client.token()
    assert.notEqual(after, before, 'rotated')
    assert.equal(JSON.parse(storage.get(KEY)).token, after)
    const me = await client.request({ url: '/v1/auth/me' })
    assert.equal(me.data.user.username, username)
    assert.equal((await json('GET', S.baseURL + '/v1/auth/me', { headers: bearer(before) })).status, 401)

    // Another device of the same WeChat user logs in straight into the bound account.
    const other = phoneAndClient({ phone })
    const again = await other.client.login()
    assert.equal(again.bound, true)
    assert.equal(again.user.id, created.data.user.id)
  })

  test('session counter through PATCH /v1/session/data', T, async () => {
    // A DevTools-like wx that can send PATCH (real devices cannot: see the next test).
    const { client } = phoneAndClient({ wxOptions: { allowPatch: true }, clientOptions: { methodOverride: false } })
    await client.login()
    let last
    for (let i = 0; i < 3; i++) {
      last = await client.request({ url: '/v1/session/data', method: 'PATCH', data: { incr: { counter: 1 } } })
      assert.equal(last.statusCode, 200)
    }
    assert.equal(last.data.data.counter, 3)
    const read = await client.request({ url: '/v1/session/data' })
    assert.equal(read.data.data.counter, 3)
  })

  test(
    'session counter from a real-device wx (no PATCH): POST + X-HTTP-Method-Override',
    T,
    async () => {
      const { client, wx } = phoneAndClient()
      await client.login()
      const res = await client.request({ url: '/v1/session/data', method: 'PATCH', data: { incr: { counter: 1 } } })
      assert.equal(wx.stats.requests.at(-1).method, 'POST')
      assert.equal(res.statusCode, 200, JSON.stringify(res.data))
      assert.equal(res.data.data.counter, 1)
    },
  )

  test('my sessions: list, revoke the other device, which logs in again on its next request', T, async () => {
    const phone = {}
    const a = phoneAndClient({ phone })
    const b = phoneAndClient({ phone })
    await a.client.login()
    await b.client.login()
    const list = await a.client.request({ url: '/v1/sessions' })
    assert.equal(list.statusCode, 200)
    const mine = list.data.sessions
    assert.equal(mine.length, 2)
    const other = mine.find((s) => !s.current)
    assert.ok(other)
    const del = await a.client.request({ url: `/v1/sessions/${other.id}`, method: 'DELETE' })
    assert.equal(del.statusCode, 204)
    const me = await b.client.request({ url: '/v1/auth/me' })
    assert.equal(me.statusCode, 200)
    assert.notEqual(me.data.session.id, other.id)
    assert.equal(b.wx.stats.loginCalls, 2)
    assert.deepEqual(b.events.expired.map((e) => e.code), ['session_revoked'])
    assert.equal(a.wx.stats.loginCalls, 1)
  })

  test('bindPhone stores the phone number from a getPhoneNumber code', T, async () => {
    const { client, phone } = phoneAndClient()
    await client.login()
    const got = await json('POST', S.emulatorURL + '/_emulator/phone-code', {
      body: { openid: phone.openid, phone: '13800138000' },
    })
    assert.equal(got.status, 200, JSON.stringify(got.data))
    const { user } = await client.bindPhone(got.data.code)
    assert.match(String(user.phone), /13800138000/)
    assert.match(String((await client.session({ cached: true })).user.phone), /13800138000/)
  })
})

describe('lost answers (the server did the request, wx reports interrupted)', () => {
  /** Lose the answer of the first `times` requests to `path` (that match `method`, if given). */
  const loseFirst = (path, { times = 1, method } = {}) => {
    let left = times
    return (option) => {
      const match = option.url.split('?')[0].endsWith(path) && (!method || option.method === method)
      if (!match || left <= 0) return null
      left--
      return 'request:fail interrupted'
    }
  }

  test('a login whose answer was lost: the server gets the same code and Idempotency-Key again and hands back the same session', T, async (t) => {
    const proxy = await recordingProxy(S.baseURL)
    t.after(proxy.close)
    const { client, wx } = phoneAndClient({ baseURL: proxy.url, wxOptions: { loseAnswer: loseFirst('/v1/auth/wechat') } })
    const c2s = (await code2SessionCalls(S.emulatorURL)).length
    const result = await client.login()
    const got = proxy.received.filter((r) => r.path === '/v1/auth/wechat')
    assert.equal(got.length, 2, 'the first attempt and its retry reached the server')
    const [first, retry] = got
    assert.match(first.headers['idempotency-key'], /^[0-9a-f]{32}$/, '128 random bits, hex')
    assert.equal(retry.headers['idempotency-key'], first.headers['idempotency-key'], 'the retry reuses the key')
    assert.equal(retry.body.code, first.body.code, 'and the code')
    assert.equal(wx.stats.lost.length, 1)
    assert.equal(wx.stats.lost[0].statusCode, 200)
    assert.equal(wx.stats.lost[0].data.session.id, result.session.id, 'the lost answer\'s session, not a second one')
    assert.equal(wx.stats.lost[0].data.token, client.token())
    assert.equal(wx.stats.loginCalls, 1)
    assert.equal((await code2SessionCalls(S.emulatorURL)).length - c2s, 1, 'one code exchange with WeChat')
    assert.equal((await client.request({ url: '/v1/sessions' })).data.sessions.length, 1)
    // The next attempt (a new code) has a new key.
    await client.login()
    const next = proxy.received.filter((r) => r.path === '/v1/auth/wechat').at(-1)
    assert.notEqual(next.body.code, first.body.code)
    assert.match(next.headers['idempotency-key'], /^[0-9a-f]{32}$/)
    assert.notEqual(next.headers['idempotency-key'], first.headers['idempotency-key'])
  })

  test(
    'a leaked code replayed without the key, or with another key, gets 400 wechat_code_used and no token',
    T,
    async (t) => {
      const proxy = await recordingProxy(S.baseURL)
      t.after(proxy.close)
      const { client } = phoneAndClient({ baseURL: proxy.url })
      await client.login()
      const [victim] = proxy.received.filter((r) => r.path === '/v1/auth/wechat')
      for (const headers of [{}, { 'Idempotency-Key': 'f'.repeat(32) }]) {
        const replay = await json('POST', S.baseURL + '/v1/auth/wechat', {
          body: { code: victim.body.code },
          headers: { 'X-Session-Transport': 'header', ...headers },
        })
        assert.equal(replay.status, 400, JSON.stringify(replay.data))
        assert.equal(replay.data.error.code, 'wechat_code_used')
        assert.equal(replay.data.token, undefined)
        assert.equal(replay.headers.get('x-session-token'), null)
      }
    },
  )

  test('an increment whose answer was lost is not sent again: the counter moved once, not twice', T, async () => {
    const { client, wx, events } = phoneAndClient({ wxOptions: { loseAnswer: loseFirst('/v1/session/data', { method: 'POST' }) } })
    await client.login()
    await assert.rejects(
      client.request({ url: '/v1/session/data', method: 'PATCH', data: { incr: { orders: 1 } } }),
      (e) => e instanceof HuihuaError && e.code === 'interrupted',
    )
    assert.equal(wx.stats.lost.length, 1)
    assert.equal(wx.stats.lost[0].statusCode, 200, 'the server did it')
    assert.equal(wx.stats.requests.filter((r) => r.url.endsWith('/v1/session/data')).length, 1, 'sent once')
    assert.deepEqual(events.errors.map((e) => e.code), ['interrupted'])
    const read = await client.request({ url: '/v1/session/data' })
    assert.equal(read.statusCode, 200)
    assert.equal(read.data.data.orders, 1)
  })

  test('a read whose answer was lost is sent again and answers', T, async () => {
    const { client, wx } = phoneAndClient({ wxOptions: { loseAnswer: loseFirst('/v1/auth/me') } })
    const { user } = await client.login()
    const me = await client.request({ url: '/v1/auth/me' })
    assert.equal(me.statusCode, 200)
    assert.equal(me.data.user.id, user.id)
    assert.equal(wx.stats.lost.length, 1)
    assert.equal(wx.stats.requests.filter((r) => r.url.endsWith('/v1/auth/me')).length, 2)
  })
})

describe('the example mini program (examples/miniprogram) against the same servers', () => {
  test('login page, counter, my sessions, binding, logout', T, async (t) => {
    const wx = createFakeWx({ emulatorURL: S.emulatorURL })
    // In development the example gets codes from the emulator itself (utils/emulator-wx.js).
    const emulatorLogins = () => wx.stats.requests.filter((r) => r.url.endsWith('/_emulator/login')).length
    wx.showToast = () => {}
    wx.navigateTo = () => {}
    const ex = loadExample({ wx, baseURL: S.baseURL, emulatorURL: S.emulatorURL })
    t.after(ex.restore)

    const index = ex.open('index')
    await index.refresh()
    assert.equal(index.data.user, null, 'not logged in, and no wx.login just for looking')
    assert.equal(emulatorLogins(), 0)
    await index.onLogin()
    assert.equal(index.data.error, '')
    assert.ok(index.data.user.id)
    assert.equal(ex.app.globalData.user.id, index.data.user.id, 'onLogin hook ran')

    const counter = ex.open('counter')
    await counter.load()
    assert.equal(counter.data.error, '')
    assert.equal(counter.data.counter, 0)

    const sessions = ex.open('sessions')
    await sessions.load()
    assert.equal(sessions.data.error, '')
    assert.equal(sessions.data.sessions.length, 1)
    assert.equal(sessions.data.sessions[0].current, true)

    const username = 'ex_' + crypto.randomBytes(4).toString('hex')
    await json('POST', S.baseURL + '/v1/accounts', { body: { username, password: 'example password 1' } })
    const bind = ex.open('bind')
    bind.onUsername({ detail: { value: username } })
    bind.onPassword({ detail: { value: 'not the password' } })
    await bind.onSubmit()
    assert.equal(bind.data.error, '用户名或密码错误')
    bind.onPassword({ detail: { value: 'example password 1' } })
    await bind.onSubmit()
    assert.equal(bind.data.error, '')
    assert.equal(bind.data.done.username, username)

    index.onEmulatorPhone()
    for (let i = 0; i < 50 && !(index.data.user && index.data.user.phone); i++) await new Promise((r) => setTimeout(r, 50))
    assert.equal(index.data.error, '')
    assert.match(String(index.data.user.phone), /13800138000/)

    await index.onLogout()
    assert.equal(index.data.user, null)
    assert.equal(ex.app.huihua.token(), null)
    assert.equal(emulatorLogins(), 1, 'one login for the whole visit')
    assert.equal(wx.stats.loginCalls, 0)
  })

  test(
    'counter +1 from the example (PATCH over wx.request)',
    T,
    async (t) => {
      const wx = createFakeWx({ emulatorURL: S.emulatorURL })
      const ex = loadExample({ wx, baseURL: S.baseURL, emulatorURL: S.emulatorURL })
      t.after(ex.restore)
      const counter = ex.open('counter')
      await counter.onIncrement()
      assert.equal(counter.data.error, '')
      assert.equal(counter.data.counter, 1)
    },
  )
})
