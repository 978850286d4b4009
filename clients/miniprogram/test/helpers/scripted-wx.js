'use strict'
// A `wx` with no network: `handle(option, n)` answers each request
// ({statusCode, data, header} | {fail: errMsg} | a Promise of either), after `delay` ms.
function createScriptedWx({ handle, delay = 5, codes = true, storage = new Map(), withVisibility = true } = {}) {
  const stats = { requests: [], loginCalls: 0, loginTimes: [], inFlight: 0, maxInFlight: 0 }
  const show = []
  const hide = []
  let n = 0
  const wx = {
    stats,
    storage,
    request(option) {
      const i = n++
      stats.requests.push({ method: option.method || 'GET', url: option.url, header: { ...(option.header || {}) }, data: option.data })
      stats.inFlight++
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight)
      let done = false
      const finish = (fn, arg) => {
        if (done) return
        done = true
        stats.inFlight--
        fn && fn(arg)
      }
      setTimeout(async () => {
        const out = await handle(option, i)
        if (!out) return // never answer
        if (out.fail) finish(option.fail, { errMsg: out.fail })
        else finish(option.success, { statusCode: out.statusCode, data: out.data, header: out.header || {} })
      }, delay)
      return { abort: () => finish(option.fail, { errMsg: 'request:fail abort' }) }
    },
    login(option) {
      stats.loginCalls++
      stats.loginTimes.push(Date.now())
      setTimeout(() => {
        if (codes) option.success({ code: 'code-' + stats.loginCalls, errMsg: 'login:ok' })
        else option.fail({ errMsg: 'login:fail no network' })
      }, 2)
    },
    getStorageSync: (k) => (storage.has(k) ? storage.get(k) : ''),
    setStorageSync: (k, v) => storage.set(k, v),
    removeStorageSync: (k) => storage.delete(k),
    _show: () => show.forEach((f) => f({})),
    _hide: () => hide.forEach((f) => f()),
  }
  if (withVisibility) {
    wx.onAppShow = (f) => show.push(f)
    wx.onAppHide = (f) => hide.push(f)
  }
  return wx
}

const err = (status, code) => ({ statusCode: status, data: { error: { code, message: code } } })

module.exports = { createScriptedWx, err }
