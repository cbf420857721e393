package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"time"

	"github.com/nats-io/jwt/v2"
)

// The hubs of a cluster share one store: it is made once, by the first hub,
// and its directory copied to the others before they first start. Each hub
// then signs nothing the others could not check, and two things follow from
// the shared keys.

// RouteUser is the user every route between the hubs of a cluster presents.
const RouteUser = "tributary-route"

// RouteSecret is the password of the routes between hubs: derived from the
// fleet account's seed, so that hubs sharing the store agree on it without
// another secret to hand out, and a server without the store cannot join.
func (s *Store) RouteSecret() string {
	seed, _ := s.account.Seed()
	m := hmac.New(sha256.New, seed)
	m.Write([]byte("tributary cluster routes v1"))
	return hex.EncodeToString(m.Sum(nil))
}

// MergeAccount takes the fleet account's JWT as another hub of the cluster
// holds it and merges its revocations into this store's (a key revoked on
// either side stays revoked), signing the result with the operator's key.
// It returns the merged JWT and whether this store's changed. A JWT of
// another account, or not signed by this store's operator, is an error.
func (s *Store) MergeAccount(other string) (merged string, changed bool, err error) {
	oc, err := jwt.DecodeAccountClaims(other)
	if err != nil {
		return "", false, fmt.Errorf("auth: the other hub's account: %w", err)
	}
	accPub, _ := s.account.PublicKey()
	opPub, _ := s.operator.PublicKey()
	if oc.Subject != accPub || oc.Issuer != opPub {
		return "", false, fmt.Errorf("auth: the other hub's account %s (issued by %s) is not this store's %s (of %s): do the hubs share DATA/auth?",
			oc.Subject, oc.Issuer, accPub, opPub)
	}
	err = s.locked(func() error {
		if err := s.load(); err != nil {
			return err
		}
		ac, err := jwt.DecodeAccountClaims(s.accountJWT)
		if err != nil {
			return fmt.Errorf("auth: account: %w", err)
		}
		for pub, at := range oc.Revocations {
			if cur, ok := ac.Revocations[pub]; !ok || cur < at {
				ac.RevokeAt(pub, fromUnix(at))
				changed = true
			}
		}
		if !changed {
			merged = s.accountJWT
			return nil
		}
		j, err := ac.Encode(s.operator)
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(s.dir, accountJWTFile), []byte(j)); err != nil {
			return err
		}
		s.accountJWT, merged = j, j
		return nil
	})
	return merged, changed, err
}

func fromUnix(sec int64) time.Time { return time.Unix(sec, 0) }
