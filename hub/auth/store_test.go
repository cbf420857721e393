package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
)

func TestStoreAddRevokeAndReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "auth")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	creds, rec, err := s.AddNode("n1", now)
	if err != nil {
		t.Fatal(err)
	}
	userJWT, err := jwt.ParseDecoratedJWT(creds)
	if err != nil {
		t.Fatal(err)
	}
	uc, err := jwt.DecodeUserClaims(userJWT)
	if err != nil {
		t.Fatal(err)
	}
	accPub, _, err := s.Account()
	if err != nil {
		t.Fatal(err)
	}
	if uc.Subject != rec.PublicKey || uc.Issuer != accPub || uc.Name != "n1" {
		t.Errorf("user claims %+v, record %+v, account %s", uc, rec, accPub)
	}
	// The node's permissions: its own subjects only.
	if got := strings.Join(uc.Pub.Allow, " "); got != "edge.n1.> ctl.n1.>" {
		t.Errorf("publish allow %q", got)
	}
	if got := strings.Join(uc.Sub.Allow, " "); got != "_INBOX.n1.> cmd.n1.>" {
		t.Errorf("subscribe allow %q", got)
	}
	if uc.Resp == nil || uc.Resp.MaxMsgs != 1 {
		t.Errorf("response permission %+v, want one reply per request", uc.Resp)
	}
	// The seed is nowhere in the store.
	seed, err := jwt.ParseDecoratedNKey(creds)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := seed.Seed()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		if strings.Contains(string(b), string(raw)) {
			t.Errorf("the node's seed is in %s", e.Name())
		}
	}
	if _, _, err := s.AddNode("n1", now); !errors.Is(err, ErrExists) {
		t.Errorf("second add: %v, want ErrExists", err)
	}
	gen := s.Generation()
	if _, err := s.Revoke("n1", now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Revoke("nobody", now); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("revoke of an unknown node: %v", err)
	}
	// A store opened again (by the hub command, or the hub) sees the same
	// keys and the revocation.
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	pub2, accJWT, err := s2.Account()
	if err != nil || pub2 != accPub {
		t.Fatalf("reopened account %s (%v), want %s", pub2, err, accPub)
	}
	ac, err := jwt.DecodeAccountClaims(accJWT)
	if err != nil {
		t.Fatal(err)
	}
	if !ac.IsClaimRevoked(uc) {
		t.Error("the revoked node's claims are not revoked in the account")
	}
	if s2.Generation().Equal(gen) {
		t.Error("the store's generation did not change with the revocation")
	}
	// A new credential for the revoked node has a new key and is not revoked.
	creds2, rec2, err := s2.AddNode("n1", now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	j2, _ := jwt.ParseDecoratedJWT(creds2)
	uc2, _ := jwt.DecodeUserClaims(j2)
	if rec2.PublicKey == rec.PublicKey || ac.IsClaimRevoked(uc2) {
		t.Errorf("new credential %s revoked=%v", rec2.PublicKey, ac.IsClaimRevoked(uc2))
	}
	if n, ok := s2.NodeOf(rec2.PublicKey); !ok || n != "n1" {
		t.Errorf("NodeOf: %q %v", n, ok)
	}
	nodes, _ := s2.Nodes()
	if len(nodes) != 2 || nodes[0].Revoked.IsZero() || !nodes[1].Revoked.IsZero() {
		t.Errorf("nodes %+v", nodes)
	}
	for _, f := range []string{hubCredsFile, systemCredsFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", f, err, fi)
		}
	}
}
