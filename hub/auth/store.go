// Package auth keeps the hub's credentials: NATS's decentralized auth, with
// an operator, a system account, one account for the fleet, a user for the hub
// itself and one user per node, all as JWTs and NKeys in files under the hub's
// data directory. A node's credential lets it publish only its own data and
// control messages and read only its own inbox; the hub keeps no copy of a
// node's seed. The hub command's "node add", "node list" and "node revoke" use
// the store while the hub runs or not; a running hub notices the change (see
// Store.Generation) and applies it to its server.
package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
	"golang.org/x/sys/unix"

	"github.com/tributary-edge/tributary/stream"
)

// Errors of the store.
var (
	// ErrUnknownNode is returned for a node that has no credential.
	ErrUnknownNode = errors.New("auth: no credential for this node")
	// ErrExists is returned when a node already has a credential.
	ErrExists = errors.New("auth: the node has a credential already")
)

// Node is one node's credential as the store records it.
type Node struct {
	Name      string    `json:"name"`
	PublicKey string    `json:"public_key"`
	Created   time.Time `json:"created"`
	Revoked   time.Time `json:"revoked,omitzero"`
}

// Store is the credential store in a directory. Methods that change it take an
// exclusive lock on the directory, so a running hub and the hub command can
// share it.
type Store struct {
	dir string
	// Loaded by Open.
	operator, system, account nkeys.KeyPair
	operatorJWT, systemJWT    string
	accountJWT                string
}

// Files of the store.
const (
	operatorSeedFile = "operator.nk"
	systemSeedFile   = "system.nk"
	accountSeedFile  = "account.nk"
	operatorJWTFile  = "operator.jwt"
	systemJWTFile    = "system.jwt"
	accountJWTFile   = "account.jwt"
	hubCredsFile     = "hub.creds"
	systemCredsFile  = "system.creds"
	nodesFile        = "nodes.json"
	lockFile         = "lock"
)

// Open opens the store in dir, creating it (with new keys) when it does not
// exist.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	s := &Store{dir: dir}
	err := s.locked(func() error {
		if _, err := os.Stat(filepath.Join(dir, operatorSeedFile)); errors.Is(err, os.ErrNotExist) {
			return s.create()
		}
		return s.load()
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// locked runs fn holding the directory's lock.
func (s *Store) locked(fn func() error) error {
	f, err := os.OpenFile(filepath.Join(s.dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("auth: lock: %w", err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("auth: lock: %w", err)
	}
	defer unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return fn()
}

// create makes the operator, the system account, the fleet's account and the
// hub's user.
func (s *Store) create() error {
	var err error
	if s.operator, err = nkeys.CreateOperator(); err != nil {
		return err
	}
	if s.system, err = nkeys.CreateAccount(); err != nil {
		return err
	}
	if s.account, err = nkeys.CreateAccount(); err != nil {
		return err
	}
	opPub, _ := s.operator.PublicKey()
	sysPub, _ := s.system.PublicKey()
	oc := jwt.NewOperatorClaims(opPub)
	oc.Name = "tributary"
	oc.SystemAccount = sysPub
	if s.operatorJWT, err = oc.Encode(s.operator); err != nil {
		return err
	}
	sc := jwt.NewAccountClaims(sysPub)
	sc.Name = "SYS"
	if s.systemJWT, err = sc.Encode(s.operator); err != nil {
		return err
	}
	accPub, _ := s.account.PublicKey()
	ac := jwt.NewAccountClaims(accPub)
	ac.Name = "tributary"
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: jwt.NoLimit, DiskStorage: jwt.NoLimit, Streams: jwt.NoLimit, Consumer: jwt.NoLimit}
	if s.accountJWT, err = ac.Encode(s.operator); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		kp   nkeys.KeyPair
	}{{operatorSeedFile, s.operator}, {systemSeedFile, s.system}, {accountSeedFile, s.account}} {
		seed, _ := f.kp.Seed()
		if err := writeFile(filepath.Join(s.dir, f.name), seed); err != nil {
			return err
		}
	}
	for name, j := range map[string]string{operatorJWTFile: s.operatorJWT, systemJWTFile: s.systemJWT, accountJWTFile: s.accountJWT} {
		if err := writeFile(filepath.Join(s.dir, name), []byte(j)); err != nil {
			return err
		}
	}
	hub, err := s.userCreds(s.account, "hub", nil)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(s.dir, hubCredsFile), hub); err != nil {
		return err
	}
	sys, err := s.userCreds(s.system, "hub-system", nil)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(s.dir, systemCredsFile), sys); err != nil {
		return err
	}
	return writeJSON(filepath.Join(s.dir, nodesFile), []Node{})
}

func (s *Store) load() error {
	var err error
	read := func(name string) []byte {
		if err != nil {
			return nil
		}
		var b []byte
		b, err = os.ReadFile(filepath.Join(s.dir, name))
		return b
	}
	opSeed, sysSeed, accSeed := read(operatorSeedFile), read(systemSeedFile), read(accountSeedFile)
	s.operatorJWT, s.systemJWT, s.accountJWT = string(read(operatorJWTFile)), string(read(systemJWTFile)), string(read(accountJWTFile))
	if err != nil {
		return fmt.Errorf("auth: read the store in %s: %w", s.dir, err)
	}
	for _, k := range []struct {
		seed []byte
		dst  *nkeys.KeyPair
	}{{opSeed, &s.operator}, {sysSeed, &s.system}, {accSeed, &s.account}} {
		if *k.dst, err = nkeys.FromSeed(k.seed); err != nil {
			return fmt.Errorf("auth: %s: bad seed: %w", s.dir, err)
		}
	}
	return nil
}

// userCreds makes a user of the account signed by key, with perms (nil: no
// restriction), and returns its credentials file's bytes.
func (s *Store) userCreds(account nkeys.KeyPair, name string, perms *jwt.Permissions) ([]byte, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, err
	}
	pub, _ := kp.PublicKey()
	uc := jwt.NewUserClaims(pub)
	uc.Name = name
	if perms != nil {
		uc.Permissions = *perms
	}
	j, err := uc.Encode(account)
	if err != nil {
		return nil, err
	}
	seed, _ := kp.Seed()
	return jwt.FormatUserConfig(j, seed)
}

// NodePermissions are a node's permissions: publish its events and control
// messages, and replies to the hub's requests; subscribe to its own inbox and
// its own command subjects. Nothing else: no JetStream or KV API, no system
// subjects, no other node's subjects.
func NodePermissions(node string) jwt.Permissions {
	var p jwt.Permissions
	p.Pub.Allow.Add(stream.SubjectPrefix+"."+node+".>", stream.ControlPrefix+"."+node+".>")
	p.Sub.Allow.Add(stream.NodeInbox(node)+".>", stream.CommandPrefix+"."+node+".>")
	p.Resp = &jwt.ResponsePermission{MaxMsgs: 1, Expires: time.Minute}
	return p
}

// AddNode makes a credential for node and returns the credentials file's
// bytes, which the store keeps no copy of. It returns ErrExists when the node
// has a credential that is not revoked.
func (s *Store) AddNode(node string, now time.Time) ([]byte, Node, error) {
	if err := stream.ValidateName("node", node); err != nil {
		return nil, Node{}, err
	}
	var creds []byte
	var rec Node
	err := s.locked(func() error {
		nodes, err := s.readNodes()
		if err != nil {
			return err
		}
		for _, n := range nodes {
			if n.Name == node && n.Revoked.IsZero() {
				return fmt.Errorf("%w: %s (revoke it first to make a new one)", ErrExists, node)
			}
		}
		perms := NodePermissions(node)
		if creds, err = s.userCreds(s.account, node, &perms); err != nil {
			return err
		}
		userJWT, err := jwt.ParseDecoratedJWT(creds)
		if err != nil {
			return err
		}
		uc, err := jwt.DecodeUserClaims(userJWT)
		if err != nil {
			return err
		}
		rec = Node{Name: node, PublicKey: uc.Subject, Created: now.UTC().Truncate(time.Second)}
		return writeJSON(filepath.Join(s.dir, nodesFile), append(nodes, rec))
	})
	return creds, rec, err
}

// Revoke revokes every credential of node: the fleet's account lists their
// keys as revoked, so that a hub applying it closes their connections and
// refuses them.
func (s *Store) Revoke(node string, now time.Time) ([]Node, error) {
	var revoked []Node
	err := s.locked(func() error {
		nodes, err := s.readNodes()
		if err != nil {
			return err
		}
		if err := s.load(); err != nil {
			return err
		}
		ac, err := jwt.DecodeAccountClaims(s.accountJWT)
		if err != nil {
			return fmt.Errorf("auth: account: %w", err)
		}
		for i, n := range nodes {
			if n.Name != node || !n.Revoked.IsZero() {
				continue
			}
			// A revocation covers credentials of the key issued up to its
			// time; the key's seed is kept nowhere, so it is revoked for
			// good, whatever the clocks of the hub and the command.
			ac.RevokeAt(n.PublicKey, now.AddDate(100, 0, 0))
			nodes[i].Revoked = now.UTC().Truncate(time.Second)
			revoked = append(revoked, nodes[i])
		}
		if len(revoked) == 0 {
			return fmt.Errorf("%w: %s", ErrUnknownNode, node)
		}
		j, err := ac.Encode(s.operator)
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(s.dir, accountJWTFile), []byte(j)); err != nil {
			return err
		}
		s.accountJWT = j
		return writeJSON(filepath.Join(s.dir, nodesFile), nodes)
	})
	return revoked, err
}

// Nodes returns every node's credential record, oldest first.
func (s *Store) Nodes() ([]Node, error) {
	var nodes []Node
	err := s.locked(func() error {
		var err error
		nodes, err = s.readNodes()
		return err
	})
	return nodes, err
}

func (s *Store) readNodes() ([]Node, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, nodesFile))
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	var nodes []Node
	if err := json.Unmarshal(b, &nodes); err != nil {
		return nil, fmt.Errorf("auth: %s: %w", nodesFile, err)
	}
	return nodes, nil
}

// NodeOf returns the node whose credential has the public key pub.
func (s *Store) NodeOf(pub string) (string, bool) {
	nodes, err := s.Nodes()
	if err != nil {
		return "", false
	}
	i := slices.IndexFunc(nodes, func(n Node) bool { return n.PublicKey == pub })
	if i < 0 {
		return "", false
	}
	return nodes[i].Name, true
}

// Operator returns the operator's claims, which the server trusts.
func (s *Store) Operator() (*jwt.OperatorClaims, error) {
	return jwt.DecodeOperatorClaims(s.operatorJWT)
}

// System returns the system account's public key and JWT.
func (s *Store) System() (string, string) {
	pub, _ := s.system.PublicKey()
	return pub, s.systemJWT
}

// Account returns the fleet's account's public key and its current JWT, read
// again from disk.
func (s *Store) Account() (string, string, error) {
	pub, _ := s.account.PublicKey()
	var j []byte
	err := s.locked(func() error {
		var err error
		j, err = os.ReadFile(filepath.Join(s.dir, accountJWTFile))
		return err
	})
	if err != nil {
		return "", "", fmt.Errorf("auth: %w", err)
	}
	return pub, string(j), nil
}

// HubCreds is the path of the hub's own credentials file.
func (s *Store) HubCreds() string { return filepath.Join(s.dir, hubCredsFile) }

// SystemCreds is the path of the hub's system-account credentials, for the
// server's events.
func (s *Store) SystemCreds() string { return filepath.Join(s.dir, systemCredsFile) }

// Generation changes whenever the fleet's account changes (a revocation): a
// running hub compares it to know when to apply the account again.
func (s *Store) Generation() time.Time {
	fi, err := os.Stat(filepath.Join(s.dir, accountJWTFile))
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// writeFile writes b to path atomically, mode 0600.
func writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("auth: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("auth: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(path, append(b, '\n'))
}
