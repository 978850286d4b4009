// Where the app talks to, per build. `envVersion` is 'develop' in DevTools and on "预览",
// 'trial' for 体验版 and 'release' once published.
//
// develop: `huihua serve --emulator` on your machine (service on :8600, WeChat emulator on :8601).
//   In DevTools tick 详情 → 本地设置 → "不校验合法域名、web-view（业务域名）、TLS 版本以及 HTTPS 证书".
//   On a phone (预览 / 真机调试) 127.0.0.1 is the phone itself: use your computer's LAN address and
//   `huihua serve --emulator --host 0.0.0.0`.
//   wx.login codes from DevTools are real WeChat codes the emulator cannot know, so in development
//   the app asks the emulator for a code instead (utils/emulator-wx.js), as the phone would.
// trial / release: your HTTPS domain, listed under 开发管理 → 开发设置 → 服务器域名 (request 合法域名),
//   with the service started with your real HUIHUA_WECHAT_APPID / HUIHUA_WECHAT_SECRET.
const configs = {
  develop: {
    baseURL: 'http://127.0.0.1:8600',
    emulatorURL: 'http://127.0.0.1:8601',
  },
  trial: {
    baseURL: 'https://api.example.com',
    emulatorURL: null,
  },
  release: {
    baseURL: 'https://api.example.com',
    emulatorURL: null,
  },
}

function envVersion() {
  try {
    return wx.getAccountInfoSync().miniProgram.envVersion || 'develop'
  } catch (e) {
    return 'develop'
  }
}

const env = envVersion()
module.exports = Object.assign({ env }, configs[env] || configs.develop)
