// Package dashboard holds the web dashboard's static assets: hand-written HTML,
// CSS and JavaScript modules plus the vendored chart library. Nothing is loaded
// from the network, so the dashboard works on a closed network. web/hubapi
// serves them.
package dashboard

import "embed"

// Files are the assets, at the root of the file system.
//
//go:embed index.html app.css favicon.svg js vendor
var Files embed.FS
