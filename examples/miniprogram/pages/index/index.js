const config = require('../../config')
const { describe } = require('../../utils/errors')
const { forgetEmulatorUser } = require('../../utils/emulator-wx')

const app = getApp()

Page({
  data: {
    loading: true,
    user: null,
    session: null,
    bound: false,
    error: '',
    env: config.env,
    baseURL: config.baseURL,
    emulator: !!config.emulatorURL,
  },

  onShow() {
    this.refresh()
  },

  // What the server thinks of our stored token (no wx.login unless the session needs it).
  async refresh() {
    this.setData({ loading: true, error: '' })
    try {
      const state = await app.huihua.session()
      this.setData({
        loading: false,
        user: state ? state.user : null,
        session: state ? state.session : null,
        bound: state ? !!(state.bound || (state.user && state.user.username)) : false,
      })
    } catch (e) {
      this.setData({ loading: false, error: describe(e) })
    }
  },

  async onLogin() {
    this.setData({ loading: true, error: '' })
    try {
      const { user, session, bound } = await app.huihua.login()
      this.setData({ loading: false, user, session, bound })
    } catch (e) {
      this.setData({ loading: false, error: describe(e) })
    }
  },

  async onLogout() {
    await app.huihua.logout()
    this.setData({ user: null, session: null, bound: false })
  },

  // Development: start over as a brand-new WeChat user of the emulator.
  async onNewUser() {
    await app.huihua.logout()
    forgetEmulatorUser(wx)
    this.setData({ user: null, session: null, bound: false })
  },

  // Production: <button open-type="getPhoneNumber"> gives a one-time code (no session_key needed).
  async onPhoneNumber(e) {
    if (!e.detail || !e.detail.code) {
      this.setData({ error: '用户未授权手机号' })
      return
    }
    await this.bindPhone(e.detail.code)
  },

  // Development: the emulator plays the getPhoneNumber button.
  onEmulatorPhone() {
    const openid = wx.getStorageSync('huihua:dev:openid')
    wx.request({
      url: config.emulatorURL + '/_emulator/phone-code',
      method: 'POST',
      data: { openid: openid, phone: '13800138000' },
      success: (res) => {
        if (res.statusCode === 200) this.bindPhone(res.data.code)
        else this.setData({ error: 'emulator: ' + res.statusCode })
      },
      fail: (err) => this.setData({ error: err.errMsg }),
    })
  },

  async bindPhone(code) {
    try {
      const { user } = await app.huihua.bindPhone(code)
      this.setData({ user, error: '' })
      wx.showToast({ title: '手机号已绑定' })
    } catch (e) {
      this.setData({ error: describe(e) })
    }
  },

  goCounter() {
    wx.navigateTo({ url: '/pages/counter/counter' })
  },
  goSessions() {
    wx.navigateTo({ url: '/pages/sessions/sessions' })
  },
  goBind() {
    wx.navigateTo({ url: '/pages/bind/bind' })
  },
})
