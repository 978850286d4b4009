// Development only: a `wx` whose login() gets its code from `huihua emulator`
// (POST /_emulator/login), for a fake WeChat user kept in storage so it survives restarts.
// Everything else is the real wx. Never used in trial/release builds (see config.js).
const OPENID_KEY = 'huihua:dev:openid'

function emulatorWx(wx, emulatorURL) {
  const platform = {}
  ;[
    'request',
    'getStorageSync',
    'setStorageSync',
    'removeStorageSync',
    'getAccountInfoSync',
    'onAppShow',
    'onAppHide',
  ].forEach(function (name) {
    if (typeof wx[name] === 'function') platform[name] = wx[name].bind(wx)
  })
  platform.login = function (options) {
    let openid = ''
    try {
      openid = wx.getStorageSync(OPENID_KEY) || ''
    } catch (e) {}
    wx.request({
      url: emulatorURL + '/_emulator/login',
      method: 'POST',
      data: openid ? { openid: openid } : {},
      timeout: options.timeout,
      success: function (res) {
        if (res.statusCode !== 200 || !res.data || !res.data.code) {
          options.fail && options.fail({ errMsg: 'login:fail emulator answered ' + res.statusCode })
          return
        }
        try {
          wx.setStorageSync(OPENID_KEY, res.data.openid)
        } catch (e) {}
        options.success && options.success({ code: res.data.code, errMsg: 'login:ok' })
      },
      fail: function (err) {
        options.fail && options.fail({ errMsg: 'login:fail emulator unreachable: ' + err.errMsg })
      },
    })
  }
  return platform
}

/** Forget the fake user: the next login is a brand-new WeChat user. */
function forgetEmulatorUser(wx) {
  try {
    wx.removeStorageSync(OPENID_KEY)
  } catch (e) {}
}

module.exports = { emulatorWx, forgetEmulatorUser }
