'use strict'
// A `wx` object for Node that behaves like WeChat's where the SDK can tell:
// - request does real HTTP (HTTPS for https:// URLs, trusting `ca` if given); success fires for EVERY status, fail only for network errors,
//   timeouts ("request:fail timeout") and invalid methods (wx has no PATCH); header keeps the
//   server's casing; GET data goes to the query string, other data is sent as JSON.
// - login asks the emulator for a code, as the phone would (POST /_emulator/login {openid}).
// - storage is a plain Map shared between "restarts" (pass the same one to a new fake), and
//   can be told to throw.
// - onAppShow/onAppHide with _hide()/_show() to play background/foreground.
const http = require('node:http')
const https = require('node:https')

const WX_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE', 'CONNECT']

function createFakeWx(options = {}) {
  const {
    emulatorURL,
    phone = {}, // {openid}: the WeChat user on this phone; unset = a new user at the first wx.login
    // (share one `phone` object between fakes to play an app restart or a second device)
    storage = new Map(),
    storageThrows = null, // {get, set, remove} booleans, or true for all
    honourTimeout = true,
    allowPatch = false, // DevTools-like leniency; real devices refuse PATCH
    accountInfo = { miniProgram: { appId: 'wx1234567890abcdef', envVersion: 'develop' } },
    onRequest = null, // (option) => void | {fail: errMsg} to inject a failure
    // (option) => errMsg | null: the request goes out and the server does it, but wx reports
    // this failure instead of the answer (e.g. 'request:fail interrupted': app in the background)
    loseAnswer = null,
    ca = null, // PEM certificate(s) to trust for https:// (a test's self-signed one)
  } = options

  const stats = {
    requests: [], // {method, url, header, data}
    lost: [], // answers the server gave that loseAnswer kept from the client: {url, statusCode, data, header}
    inFlight: 0,
    maxInFlight: 0,
    loginCalls: 0,
    loginTimes: [],
    openids: [],
  }
  const showListeners = []
  const hideListeners = []
  const throws = (op) => storageThrows === true || (storageThrows && storageThrows[op])

  const wx = {
    stats,
    storage,
    phone,
    request(option) {
      let done = false
      const once = (fn) => (arg) => {
        if (done) return
        done = true
        stats.inFlight--
        fn && fn(arg)
      }
      stats.inFlight++
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight)
      const success = once(option.success)
      const fail = once(option.fail)
      const method = String(option.method || 'GET').toUpperCase()
      const header = Object.assign({}, option.header || {})
      stats.requests.push({ method, url: option.url, header, data: option.data })
      const lose = loseAnswer ? loseAnswer(option) : null
      let req = null
      let timer = null
      const finishFail = (errMsg) => {
        if (timer) clearTimeout(timer)
        fail({ errMsg, errno: 600001 })
      }
      if (onRequest) {
        const injected = onRequest(option)
        if (injected && injected.fail) {
          setImmediate(() => finishFail(injected.fail))
          return { abort() {} }
        }
      }
      if (!WX_METHODS.includes(method) && !(allowPatch && method === 'PATCH')) {
        setImmediate(() => finishFail('request:fail method invalid'))
        return { abort() {} }
      }
      let url = option.url
      let body
      const data = option.data
      if (!Object.keys(header).some((k) => k.toLowerCase() === 'content-type')) {
        header['content-type'] = 'application/json'
      }
      if (data != null) {
        if (method === 'GET' && typeof data === 'object') {
          const qs = Object.keys(data)
            .map((k) => encodeURIComponent(k) + '=' + encodeURIComponent(String(data[k])))
            .join('&')
          if (qs) url += (url.includes('?') ? '&' : '?') + qs
        } else if (typeof data === 'object') {
          body = JSON.stringify(data)
        } else {
          body = String(data)
        }
      }
      try {
        const tls = String(url).startsWith('https:')
        // As WeChat does, a body goes with its Content-Length (not chunked: WSGI servers such as
        // Django's runserver do not read chunked bodies).
        const headers = body !== undefined ? { ...header, 'content-length': Buffer.byteLength(body) } : header
        const requestOptions = tls && ca ? { method, headers, ca } : { method, headers }
        req = (tls ? https : http).request(url, requestOptions, (res) => {
          const chunks = []
          res.on('data', (c) => chunks.push(c))
          res.on('end', () => {
            if (timer) clearTimeout(timer)
            const text = Buffer.concat(chunks).toString('utf8')
            let parsed = text
            if ((option.dataType || 'json') === 'json') {
              try {
                parsed = JSON.parse(text)
              } catch (_e) {
                parsed = text
              }
            }
            const headers = {}
            for (let i = 0; i < res.rawHeaders.length; i += 2) headers[res.rawHeaders[i]] = res.rawHeaders[i + 1]
            if (lose) {
              stats.lost.push({ url: option.url, statusCode: res.statusCode, data: parsed, header: headers })
              return finishFail(lose)
            }
            success({ statusCode: res.statusCode, data: parsed, header: headers, cookies: [], errMsg: 'request:ok' })
          })
          res.on('error', (e) => finishFail('request:fail ' + e.message))
        })
        req.on('error', (e) => finishFail('request:fail ' + (e.code || e.message)))
        if (honourTimeout && option.timeout) {
          timer = setTimeout(() => {
            req.destroy()
            finishFail('request:fail timeout')
          }, option.timeout)
        }
        if (body !== undefined) req.write(body)
        req.end()
      } catch (e) {
        setImmediate(() => finishFail('request:fail ' + e.message))
      }
      return {
        abort() {
          if (req) req.destroy()
          finishFail('request:fail abort')
        },
      }
    },
    login(option) {
      stats.loginCalls++
      stats.loginTimes.push(Date.now())
      fetch(emulatorURL + '/_emulator/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(phone.openid ? { openid: phone.openid } : {}),
      })
        .then(async (r) => {
          const body = await r.json()
          if (!r.ok || !body.code) throw new Error('emulator said ' + r.status + ' ' + JSON.stringify(body))
          stats.openids.push(body.openid)
          phone.openid = body.openid
          option.success && option.success({ code: body.code, errMsg: 'login:ok' })
        })
        .catch((e) => option.fail && option.fail({ errMsg: 'login:fail ' + e.message }))
    },
    getStorageSync(key) {
      if (throws('get')) throw new Error('getStorageSync:fail storage broken')
      return storage.has(key) ? storage.get(key) : ''
    },
    setStorageSync(key, value) {
      if (throws('set')) throw new Error('setStorageSync:fail exceed storage max size 10MB')
      storage.set(key, value)
    },
    removeStorageSync(key) {
      if (throws('remove')) throw new Error('removeStorageSync:fail storage broken')
      storage.delete(key)
    },
    getAccountInfoSync() {
      return accountInfo
    },
    onAppShow(fn) {
      showListeners.push(fn)
    },
    onAppHide(fn) {
      hideListeners.push(fn)
    },
    _show() {
      showListeners.forEach((fn) => fn({ path: 'pages/index/index' }))
    },
    _hide() {
      hideListeners.forEach((fn) => fn())
    },
  }
  return wx
}

module.exports = { createFakeWx, WX_METHODS }
