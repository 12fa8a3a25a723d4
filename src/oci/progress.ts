/** The events a pull reports, for progress bars and logs. */

/**
 * One step of a pull. `layer-*` events carry the layer's digest and size, so a CLI can
 * keep one bar per layer:
 *
 * - `resolved` — the reference was resolved to a manifest (`digest`), for `platform`.
 * - `layer-cached` — the blob is already in the store; nothing to download.
 * - `layer-progress` — `bytes` of `total` downloaded so far (throttled to one per chunk).
 * - `layer-downloaded` — the blob is verified and in the store.
 * - `layer-unpacked` — the layer is unpacked (or already was) for overlay use.
 * - `done` — the image is in the store under `reference`.
 */
export type PullEvent =
  | { readonly type: 'resolved'; readonly reference: string; readonly digest: string; readonly platform: string; readonly layers: number }
  | { readonly type: 'layer-cached'; readonly digest: string; readonly total: number }
  | { readonly type: 'layer-progress'; readonly digest: string; readonly bytes: number; readonly total: number }
  | { readonly type: 'layer-downloaded'; readonly digest: string; readonly total: number }
  | { readonly type: 'layer-unpacked'; readonly digest: string; readonly diffID: string }
  | { readonly type: 'done'; readonly reference: string; readonly digest: string };
