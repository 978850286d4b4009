export { createClient, HuihuaClient, SessionState } from './client'
export { HuihuaError, ErrorCode } from './errors'
export { taro, uni, fromPlatform } from './adapters'
export {
  ClientOptions,
  ClientPaths,
  Hooks,
  LoginResult,
  Method,
  RequestOptions,
  Response,
  SessionExpiredEvent,
  SessionInfo,
  StoredState,
  User,
  WxLike,
} from './types'
