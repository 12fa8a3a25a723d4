/**
 * `ctrkit/oci`: OCI images. This release parses image references; the registry client,
 * image store and layer unpacker build on it. Importing it never loads the FFI layer.
 * @packageDocumentation
 */
export { parseReference, ImageReference, ReferenceError, DEFAULT_REGISTRY } from './reference.js';
