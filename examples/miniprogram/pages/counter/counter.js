// Session data lives on the server with the session: GET / PATCH /v1/session/data.
// The first request logs in by itself when there is no session yet.
const { describe } = require('../../utils/errors')

const app = getApp()

Page({
  data: { counter: 0, busy: false, error: '' },

  onShow() {
    this.load()
  },

  async load() {
    try {
      const res = await app.huihua.request({ url: '/v1/session/data' })
      if (res.statusCode !== 200) throw httpError(res)
      this.setData({ counter: res.data.data.counter || 0, error: '' })
    } catch (e) {
      this.setData({ error: describe(e) })
    }
  },

  async onIncrement() {
    this.setData({ busy: true })
    try {
      // wx.request has no PATCH: the SDK sends POST + X-HTTP-Method-Override: PATCH.
      const res = await app.huihua.request({
        url: '/v1/session/data',
        method: 'PATCH',
        data: { incr: { counter: 1 } },
      })
      if (res.statusCode !== 200) throw httpError(res)
      this.setData({ counter: res.data.data.counter, error: '' })
    } catch (e) {
      this.setData({ error: describe(e) })
    } finally {
      this.setData({ busy: false })
    }
  },

  // Ten taps at once: the SDK queues them under WeChat's 10-request limit.
  async onBurst() {
    this.setData({ busy: true })
    try {
      const all = await Promise.all(
        Array.from({ length: 10 }, () => app.huihua.request({ url: '/v1/session/data', method: 'PATCH', data: { incr: { counter: 1 } } })),
      )
      const last = all.filter((r) => r.statusCode === 200).map((r) => r.data.data.counter)
      this.setData({ counter: Math.max.apply(null, [this.data.counter].concat(last)), error: '' })
    } catch (e) {
      this.setData({ error: describe(e) })
    } finally {
      this.setData({ busy: false })
    }
  },
})

function httpError(res) {
  const code = res.data && res.data.error && res.data.error.code
  return { serverCode: code || 'http_' + res.statusCode, statusCode: res.statusCode }
}
