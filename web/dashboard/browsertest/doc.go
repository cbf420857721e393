// Package browsertest drives the hub's dashboard in headless Chromium against a
// real hub, built and run as a process: with two simulated edge agents, also
// run as processes (browser_test.go), and with 10,000 nodes published by the
// fleet simulator (fleet_test.go). It holds only tests.
package browsertest
