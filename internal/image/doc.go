// Package image is the OCI image store that dynos run from: it takes images
// in (an OCI image layout directory, or a manifest and its blobs from the
// embedded registry), verifies every digest, and hands the runtime each
// image's config and its layers unpacked, ready to be stacked as overlayfs
// lower directories.
//
// # Identity
//
// An image is identified the way `heroku container:release` identifies it:
// by the digest of its config ("sha256:…", what docker calls the image id).
// It can also be found by the digest of its manifest, and by the digest of
// the index (multi-platform image) it was picked from. From an index the
// store keeps only the image for its platform, linux/<host arch> by default;
// an index without one is refused with an error wrapping ErrNoPlatform.
//
// # On disk
//
//	<dir>/
//	  blobs/sha256/<hex>   content-addressed blobs: manifests, indexes,
//	                       configs and (compressed) layers, each written to
//	                       tmp/, verified, fsynced and renamed into place
//	  refs/<hex>           one small JSON record per digest an image can be
//	                       found by (config, manifest, index):
//	                       {"config":"sha256:…","manifest":"sha256:…","index":"sha256:…"};
//	                       written last, so an image is visible only once all
//	                       its blobs are stored
//	  layers/<diff-id hex> the unpacked-layer cache: one directory per
//	                       distinct layer, keyed by its diff-id (the digest of
//	                       the uncompressed tar, as listed in the config), so
//	                       a layer shared by many images, or pushed once
//	                       gzipped and once uncompressed, is unpacked once.
//	                       Each is in overlayfs form (whiteouts are 0/0
//	                       character devices, opaque directories carry
//	                       trusted.overlay.opaque=y) and is never changed
//	                       once it exists
//	  tmp/                 temporary blobs, records and half-unpacked layers;
//	                       emptied by Open
//
// A layer is unpacked lazily, by the first Image call that needs it, into a
// directory under tmp/; its diff-id is verified while it is read, the file
// system is synced, and the directory is renamed (RENAME_NOREPLACE) to
// layers/<hex>. A crash therefore never leaves a partial layer under
// layers/, and two unpacks of one layer race harmlessly: one rename wins,
// the loser's copy is deleted. Within a process concurrent Image calls share
// one unpack per layer.
//
// # Unpacking
//
// Unpack is the hardened tar unpacker the store uses; its documentation
// lists what it refuses (path escapes through "..", symbolic links or hard
// links) and what it keeps (modes with setuid and sticky bits, owners,
// times). Nothing it writes ever lands outside its target directory.
//
// Package imagetest builds small images (a static Go program in a scratch
// image) for tests of this package and of the packages that run images.
package image
