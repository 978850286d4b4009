// Tie this WeChat user to an existing username/password account (POST /v1/auth/wechat/bind).
// The server rotates the session token; the SDK stores the new one. Later WeChat logins of
// this user come back as that account (`bound: true`).
const { describe } = require('../../utils/errors')

const app = getApp()

Page({
  data: { username: '', password: '', busy: false, error: '', done: null },

  onUsername(e) {
    this.setData({ username: e.detail.value })
  },
  onPassword(e) {
    this.setData({ password: e.detail.value })
  },

  async onSubmit() {
    const { username, password } = this.data
    if (!username || !password) {
      this.setData({ error: '请输入用户名和密码' })
      return
    }
    this.setData({ busy: true, error: '' })
    try {
      const { user } = await app.huihua.bind(username, password)
      this.setData({ done: user, password: '' })
      wx.showToast({ title: '已绑定' })
    } catch (e) {
      const wrong = e && e.serverCode === 'invalid_credentials'
      this.setData({ error: wrong ? '用户名或密码错误' : describe(e) })
    } finally {
      this.setData({ busy: false })
    }
  },
})
