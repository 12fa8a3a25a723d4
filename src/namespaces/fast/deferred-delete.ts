/**
 * Directory trees to delete off the main thread. While the thread start path runs, its
 * builder thread takes them: with the next start's request, deleting them right after its
 * reply (while the caller goes on with that container), or on its own after a short idle
 * while. Synchronous calls on that thread cost the caller's event loop nothing, where an
 * asynchronous rm -rf of a small tree costs it a callback per file. Kept apart from
 * ./threads.ts so that asking does not load the thread machinery.
 * @internal
 */

/** Takes `path`, or says undefined (no builder thread runs): the caller deletes it itself. */
export type Deleter = (path: string) => Promise<void> | undefined;

let deleter: Deleter | undefined;

/** Registered by the thread start path while its threads run. @internal */
export function setDeleter(d: Deleter | undefined): void {
  deleter = d;
}

/** Hands `path` to the builder thread; undefined when there is none. @internal */
export function deleteOnBuilder(path: string): Promise<void> | undefined {
  return deleter?.(path);
}
