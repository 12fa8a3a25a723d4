/** What the CLI uses of the public API, in one place. @internal */
export { Container, CtrkitError, defaultRootfs, Wait } from '../index.js';
export type { NamespaceType as NamespaceTypeName } from '../namespaces/index.js';
