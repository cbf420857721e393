package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFlagsAndEnvironment(t *testing.T) {
	c, err := parse([]string{"--http", "127.0.0.1:9"}, env(map[string]string{
		"TRIBUTARY_HTTP": "ignored:1", "TRIBUTARY_MAX_STORE": "2GiB", "TRIBUTARY_RETENTION": "48h", "TRIBUTARY_DATA": "/srv/hub",
	}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.http != "127.0.0.1:9" || c.maxStore != 2<<30 || c.retention != 48*time.Hour || c.data != "/srv/hub" || c.nats != "127.0.0.1:4222" {
		t.Fatalf("config %+v", c)
	}
}

func TestBadConfigurationSaysWhat(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--max-store", "lots"}, nil, "max-store"},
		{[]string{"--max-store", "0"}, nil, "--max-store"},
		{[]string{"--retention", "-1h"}, nil, "--retention"},
		{[]string{"--replicas", "7"}, nil, "--replicas"},
		{nil, map[string]string{"TRIBUTARY_RETENTION": "forever"}, "TRIBUTARY_RETENTION"},
		{[]string{"extra"}, nil, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		var stderr, stdout bytes.Buffer
		code := run(context.Background(), tt.args, env(tt.env), &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%v %v: exit %d, stderr %q; want 2 mentioning %q", tt.args, tt.env, code, stderr.String(), tt.want)
		}
	}
}

func TestVersionAndHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"--version"}, env(nil), &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "hub ") {
		t.Fatalf("--version: %d %q", code, stdout.String())
	}
	stdout.Reset()
	if code := run(context.Background(), []string{"--help"}, env(nil), &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "TRIBUTARY_MAX_STORE") {
		t.Fatalf("--help: %d %q", code, stderr.String())
	}
}

func TestRunsUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr bytes.Buffer
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"--data", t.TempDir(), "--http", "127.0.0.1:0", "--nats", "127.0.0.1:0", "--max-store", "64MiB"}, env(nil), &syncWriter{b: &stdout}, &stderr)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(readSync(&stdout), "dashboard http://127.0.0.1:") {
		if time.Now().After(deadline) {
			t.Fatalf("no start-up line; stderr: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("hub did not stop after cancel")
	}
}
