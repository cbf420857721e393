// Package stream owns the event and its identity, the batch wire format, subject
// names, the JetStream stream definition and the k-way merge of per-node ordered
// streams. It does no I/O, starts no goroutines and reads no clock.
package stream

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidName is returned (wrapped) when a node ID or stream name does not match
// ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$.
var ErrInvalidName = errors.New("invalid name")

// MaxNameLen is the longest node ID or stream name accepted.
const MaxNameLen = 64

// ValidateName reports whether s is a valid node ID or stream name. what names the
// thing being checked ("node", "stream", "counter") for the error message. Names
// that start with "_" are reserved for control subjects and are refused here.
func ValidateName(what, s string) error {
	if s == "" {
		return fmt.Errorf("%w: %s name is empty", ErrInvalidName, what)
	}
	if len(s) > MaxNameLen {
		return fmt.Errorf("%w: %s name %.20q… is %d bytes long, the limit is %d", ErrInvalidName, what, s, len(s), MaxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if i > 0 {
			ok = ok || c == '_' || c == '-'
		}
		if !ok {
			return fmt.Errorf("%w: %s name %q has %q at position %d; names match ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", ErrInvalidName, what, s, rune(c), i+1)
		}
	}
	return nil
}

// CleanName turns an arbitrary string (a host name, say) into a valid name by
// replacing every character outside [A-Za-z0-9_-] with '-', trimming a leading
// '_' or '-', and cutting to MaxNameLen. It returns "node" when nothing is left.
func CleanName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < MaxNameLen; i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
			b.WriteByte(c)
		case b.Len() == 0:
			// a name must start with a letter or digit
		default:
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 {
		return "node"
	}
	return b.String()
}

// Subject names. Every edge publishes under edge.<node>.<stream>; names starting
// with "_" are control subjects.
const (
	// SubjectPrefix is the first token of every edge subject.
	SubjectPrefix = "edge"
	// StreamSubjects is the subject filter of the EDGE JetStream stream.
	StreamSubjects = "edge.*.*"
	// HeartbeatStream is the control stream name of heartbeats.
	HeartbeatStream = "_hb"
	// DropsStream is the control stream name of drop reports.
	DropsStream = "_drops"
	// CountersStream is the control stream name of counter states.
	CountersStream = "_counters"
	// JetStreamName is the name of the hub's JetStream stream.
	JetStreamName = "EDGE"
	// CountersBucket is the name of the hub's counters KV bucket.
	CountersBucket = "COUNTERS"
)

// Subject returns the subject an edge publishes a stream's batches on.
func Subject(node, stream string) string {
	return SubjectPrefix + "." + node + "." + stream
}

// ParseSubject splits edge.<node>.<stream> into its node and stream. It returns an
// error for any other shape; the names themselves are not validated.
func ParseSubject(subj string) (node, stream string, err error) {
	parts := strings.Split(subj, ".")
	if len(parts) != 3 || parts[0] != SubjectPrefix || parts[1] == "" || parts[2] == "" {
		return "", "", fmt.Errorf("subject %q is not of the form edge.<node>.<stream>", subj)
	}
	return parts[1], parts[2], nil
}
