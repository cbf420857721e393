package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tributary-edge/tributary/internal/tlstest"
)

// trustCA makes this test's HTTP requests trust pool (the hub's HTTPS).
func trustCA(t *testing.T, pool *x509.CertPool) {
	tr := http.DefaultTransport.(*http.Transport)
	old := tr.TLSClientConfig
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	tr.CloseIdleConnections()
	t.Cleanup(func() { tr.TLSClientConfig = old; tr.CloseIdleConnections() })
}

// secureHub is a hub as the README sets one up for a network: every NATS
// client presents a credential made by "hub node add", and the NATS and HTTP
// listeners serve TLS with a certificate of a private CA.
type secureHub struct {
	*hubProc
	ca *tlstest.CA
}

func startSecureHub(t *testing.T, extra ...string) *secureHub {
	t.Helper()
	certs := t.TempDir()
	ca := tlstest.NewCA(t, certs, "fleet-ca")
	cert, key := ca.Issue(t, "hub", "127.0.0.1", "localhost")
	trustCA(t, ca.Pool)
	args := append([]string{"--auth", "creds", "--tls-cert", cert, "--tls-key", key}, extra...)
	return &secureHub{hubProc: startHub(t, t.TempDir(), args...), ca: ca}
}

// nodeAdd runs "hub node add" and returns the credentials file.
func (h *secureHub) nodeAdd(t *testing.T, node string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), node+".creds")
	code, stdout, stderr := runHubCLI(t, "node", "add", node, "--data", h.dir, "--out", out)
	if code != 0 || strings.TrimSpace(stdout) != out {
		t.Fatalf("hub node add %s: exit %d, stdout %q, stderr %q", node, code, stdout, stderr)
	}
	return out
}

// edgeArgs are the flags of an edge that connects to the hub with creds.
func (h *secureHub) edgeArgs(creds string) []string {
	return []string{"--creds", creds, "--tls-ca", h.ca.File}
}

// runHubCLI runs the hub binary to completion.
func runHubCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "hub"), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = os.Environ()
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("hub %v did not exit within 60 s: %s", args, stderr.String())
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// natsErrors collects a connection's asynchronous errors (permission
// violations).
type natsErrors struct {
	mu   sync.Mutex
	errs []error
}

func (e *natsErrors) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.errs = append(e.errs, err)
}

// saw reports whether an error mentioning every one of words arrived.
func (e *natsErrors) saw(words ...string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, err := range e.errs {
		msg := strings.ToLower(err.Error())
		all := true
		for _, w := range words {
			all = all && strings.Contains(msg, strings.ToLower(w))
		}
		if all {
			return true
		}
	}
	return false
}

// hubMetric reads one series of the hub's /metrics (0 when absent).
func hubMetric(t *testing.T, h *hubProc, series string) float64 {
	t.Helper()
	code, body := httpGet(t, h.url()+"/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	v, _ := metricValue(t, string(body), series)
	return v
}
