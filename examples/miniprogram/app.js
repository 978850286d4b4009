const { createClient } = require('huihua-miniprogram')
const config = require('./config')
const { emulatorWx } = require('./utils/emulator-wx')

App({
  onLaunch() {
    const platform = config.emulatorURL ? emulatorWx(wx, config.emulatorURL) : wx
    // One client for the whole app: it keeps the token in storage, shares one login between
    // all requests that need it, and keeps under WeChat's 10 concurrent requests.
    this.huihua = createClient({
      baseURL: config.baseURL,
      wx: platform,
      timeout: 10000,
      hooks: {
        onLogin: (result) => {
          this.globalData.user = result.user
          this.globalData.bound = result.bound
        },
        onSessionExpired: (event) => {
          console.info('[huihua] session ended (' + event.code + '), logging in again')
        },
        onError: (error) => {
          console.warn('[huihua]', error.code, error.message)
          if (error.code === 'network' || error.code === 'timeout') {
            wx.showToast({ title: '网络不可用', icon: 'none' })
          }
        },
      },
    })
  },

  globalData: {
    user: null,
    bound: false,
  },
})
