/** Compile-time only (`npm run typecheck`, not built into dist/): the real `wx` must satisfy the interface the client asks for. */
import { WxLike } from '../src/types'

type Assert<T extends true> = T
export type WxSatisfiesWxLike = Assert<WechatMiniprogram.Wx extends WxLike ? true : false>
