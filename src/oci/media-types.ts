/** The media types of the OCI image spec and Docker's schema 2 that ctrkit reads. */

/** An OCI image manifest. */
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
/** An OCI image index (a list of manifests, one per platform). */
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
/** An OCI image config. */
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
/** Docker's schema 2 manifest. */
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
/** Docker's manifest list (its index). */
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
/** Docker's image config. */
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';

/** The layer media types ctrkit unpacks, and how each is compressed. */
export const LAYER_COMPRESSION: Readonly<Record<string, 'gzip' | 'zstd' | 'none'>> = {
  'application/vnd.oci.image.layer.v1.tar': 'none',
  'application/vnd.oci.image.layer.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd': 'zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip': 'gzip',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip': 'gzip',
};

/** True for the two manifest forms (as opposed to the two index forms). */
export function isManifestType(t: string): boolean {
  return t === OCI_MANIFEST || t === DOCKER_MANIFEST;
}

/** True for the two index forms. */
export function isIndexType(t: string): boolean {
  return t === OCI_INDEX || t === DOCKER_MANIFEST_LIST;
}

/** What a manifest request's Accept header lists: every form ctrkit reads. */
export const MANIFEST_ACCEPT = [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST].join(', ');
