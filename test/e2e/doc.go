// Package e2e holds Skiff's end-to-end tests: they build the real `skiff`
// binary, start `skiff server` on a kernel-chosen loopback port with its own
// data directory, and drive it with the official `heroku` CLI (npm package
// `heroku`, installed by scripts/install-heroku-cli into the cache directory),
// checking the CLI's own output.
//
// Run them with
//
//	go test ./test/e2e/
//
// Node.js 20 or later and npm must be on PATH; the CLI is installed on first
// use (SKIFF_CACHE_DIR, default ~/.cache/skiff) and a failed install fails the
// tests rather than skipping them.
package e2e
