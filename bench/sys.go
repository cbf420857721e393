package main

import "runtime"

func numCPU() int    { return runtime.NumCPU() }
func goarch() string { return runtime.GOOS + "/" + runtime.GOARCH }
