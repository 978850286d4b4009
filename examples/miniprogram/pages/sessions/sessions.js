// GET /v1/sessions lists every live session of this user (other phones, the web, ...);
// DELETE /v1/sessions/{id} ends one. Ending the current one logs this phone out.
const { describe } = require('../../utils/errors')

const app = getApp()

Page({
  data: { sessions: [], error: '', loading: true },

  onShow() {
    this.load()
  },

  async onPullDownRefresh() {
    await this.load()
    wx.stopPullDownRefresh()
  },

  async load() {
    this.setData({ loading: true })
    try {
      const res = await app.huihua.request({ url: '/v1/sessions' })
      if (res.statusCode !== 200) throw { serverCode: errorCode(res), statusCode: res.statusCode }
      this.setData({ sessions: res.data.sessions, error: '', loading: false })
    } catch (e) {
      this.setData({ error: describe(e), loading: false })
    }
  },

  onRevoke(e) {
    const { id, current } = e.currentTarget.dataset
    wx.showModal({
      title: current ? '退出本机？' : '结束这个会话？',
      content: current ? '这会退出当前登录。' : '那台设备下次请求时需要重新登录。',
      success: async (choice) => {
        if (!choice.confirm) return
        if (current) {
          await app.huihua.logout()
          wx.reLaunch({ url: '/pages/index/index' })
          return
        }
        const res = await app.huihua.request({ url: '/v1/sessions/' + encodeURIComponent(id), method: 'DELETE' })
        if (res.statusCode !== 204) this.setData({ error: errorCode(res) })
        this.load()
      },
    })
  },
})

function errorCode(res) {
  return (res.data && res.data.error && res.data.error.code) || 'http_' + res.statusCode
}
