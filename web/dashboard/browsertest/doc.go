// Package browsertest drives the hub's dashboard in headless Chromium against a
// real hub and two simulated edge agents, built and run as processes. It holds
// only tests; see browser_test.go.
package browsertest
