package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAuthDefaultsByListener(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, authNone},
		{[]string{"--nats", "0.0.0.0:4222"}, authCreds},
		{[]string{"--nats", "[::]:4222"}, authCreds},
		{[]string{"--nats", ":4222"}, authCreds},
		{[]string{"--nats", "hub.example.com:4222"}, authCreds},
		{[]string{"--nats", "localhost:4222", "--http", "[::1]:8080"}, authNone},
		{[]string{"--http", "0.0.0.0:8080", "--api-token", "t"}, authCreds},
		{[]string{"--nats-url", "nats://elsewhere:4222"}, authNone},
		{[]string{"--nats", "0.0.0.0:4222", "--auth", "none", "--insecure"}, authNone},
	}
	for _, tt := range tests {
		c, err := parse(tt.args, env(nil), &bytes.Buffer{})
		if err != nil {
			t.Errorf("%v: %v", tt.args, err)
			continue
		}
		if c.auth != tt.want {
			t.Errorf("%v: --auth %q, want %q", tt.args, c.auth, tt.want)
		}
	}
}

func TestUnprotectedListenersAreRefused(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("# no tokens\n\n"), 0o600)
	spaced := filepath.Join(dir, "spaced")
	os.WriteFile(spaced, []byte("good\nbad token\n"), 0o600)
	tests := []struct {
		args  []string
		words []string
	}{
		{[]string{"--nats", "0.0.0.0:4222", "--auth", "none"}, []string{"NATS listener 0.0.0.0:4222", "--auth creds", "--insecure"}},
		{[]string{"--http", "0.0.0.0:8080"}, []string{"HTTP listener 0.0.0.0:8080", "--api-token", "--insecure"}},
		{[]string{"--auth", "maybe"}, []string{`--auth "maybe"`}},
		{[]string{"--api-tokens-file", filepath.Join(dir, "missing")}, []string{"--api-tokens-file"}},
		{[]string{"--api-tokens-file", empty}, []string{"no token"}},
		{[]string{"--api-tokens-file", spaced}, []string{spaced + ":2"}},
		{[]string{"--tls-cert", "c.pem"}, []string{"--tls-cert and --tls-key"}},
		{[]string{"--tls-client-ca", "ca.pem"}, []string{"--tls-client-ca needs"}},
		{[]string{"--tls-cert", filepath.Join(dir, "no.pem"), "--tls-key", filepath.Join(dir, "no.key")}, []string{"no.pem"}},
		{[]string{"--nats-creds", "x.creds"}, []string{"--nats-creds goes with --nats-url"}},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tt.args, env(nil), &stdout, &stderr)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", tt.args, code, stderr.String())
		}
		for _, w := range tt.words {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("%v: stderr %q does not mention %q", tt.args, stderr.String(), w)
			}
		}
	}
}

func TestInsecureWarns(t *testing.T) {
	c, err := parse([]string{"--http", "0.0.0.0:8080", "--nats", "0.0.0.0:4222", "--auth", "none", "--insecure"}, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.warnings) != 2 || !strings.Contains(c.warnings[0], "INSECURE") {
		t.Fatalf("warnings %q, want one for each exposed listener", c.warnings)
	}
}

func TestTokensFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(f, []byte("# ops\nalpha\n\n  beta  \n"), 0o600)
	c, err := parse([]string{"--api-token", "gamma", "--api-tokens-file", f, "--http", "0.0.0.0:8080"}, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.tokens, ",") != "gamma,alpha,beta" {
		t.Fatalf("tokens %q", c.tokens)
	}
}

// TestNodeCommands adds, lists and revokes credentials with the hub's
// command, without a hub running.
func TestNodeCommands(t *testing.T) {
	data := t.TempDir()
	out := filepath.Join(t.TempDir(), "n1.creds")
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	node := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := runNode(args, env(nil), now, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	if code, stdout, stderr := node("add", "n1", "--data", data, "--out", out); code != 0 || strings.TrimSpace(stdout) != out {
		t.Fatalf("add: %d %q %q", code, stdout, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(b), "BEGIN NATS USER JWT") || !strings.Contains(string(b), "BEGIN USER NKEY SEED") {
		t.Fatalf("credentials file: %v %q", err, b)
	}
	if code, _, stderr := node("add", "n1", "--data", data, "--out", filepath.Join(t.TempDir(), "again.creds")); code != 1 || !strings.Contains(stderr, "revoke it first") {
		t.Errorf("second add of n1: %d %q", code, stderr)
	}
	if code, _, stderr := node("add", "n2", "--data", data, "--out", out); code != 1 || !strings.Contains(stderr, "--out") {
		t.Errorf("add over an existing file: %d %q", code, stderr)
	}
	if code, _, stderr := node("add", "bad.name", "--data", data, "--out", filepath.Join(t.TempDir(), "x")); code != 1 || !strings.Contains(stderr, "bad.name") {
		t.Errorf("add of an invalid name: %d %q", code, stderr)
	}
	// Flags before the name work too; the default file is ./NAME.creds.
	wd, _ := os.Getwd()
	os.Chdir(t.TempDir())
	defer os.Chdir(wd)
	if code, stdout, stderr := node("add", "--data", data, "n2"); code != 0 || !strings.HasSuffix(strings.TrimSpace(stdout), "/n2.creds") {
		t.Fatalf("add n2: %d %q %q", code, stdout, stderr)
	}
	if code, stdout, _ := node("revoke", "n1", "--data", data); code != 0 || !strings.HasPrefix(stdout, "revoked n1 U") {
		t.Errorf("revoke: %d %q", code, stdout)
	}
	if code, _, stderr := node("revoke", "n1", "--data", data); code != 1 || !strings.Contains(stderr, "no credential") {
		t.Errorf("revoke again: %d %q", code, stderr)
	}
	code, stdout, _ := node("list", "--data", data)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != 0 || len(lines) != 2 {
		t.Fatalf("list: %d %q", code, stdout)
	}
	f1, f2 := strings.Fields(lines[0]), strings.Fields(lines[1])
	if f1[0] != "n1" || f1[2] != "2026-12-01T10:00:00Z" || f1[3] != "2026-12-01T10:00:00Z" || f2[0] != "n2" || f2[3] != "-" {
		t.Errorf("list:\n%s", stdout)
	}
	for _, args := range [][]string{nil, {"frobnicate"}, {"add"}, {"list", "extra"}} {
		if code, _, _ := node(args...); code != 2 {
			t.Errorf("hub node %v: exit %d, want 2", args, code)
		}
	}
}
