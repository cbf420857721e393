// Package stream owns the event and its identity, the batch wire format and the
// subject names. It does no I/O, starts no goroutines and reads no clock.
package stream

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
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
	// Positions count characters, not bytes, and the character named is the
	// one written ("été" has 'é' at position 1, not the byte 'Ã').
	pos := 0
	for i, c := range s {
		pos++
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if i > 0 {
			ok = ok || c == '_' || c == '-'
		}
		if !ok {
			if _, size := utf8.DecodeRuneInString(s[i:]); c == utf8.RuneError && size == 1 {
				return fmt.Errorf("%w: %s name %q is not valid UTF-8 at position %d; names match ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", ErrInvalidName, what, s, pos)
			}
			return fmt.Errorf("%w: %s name %q has %q at position %d; names match ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", ErrInvalidName, what, s, c, pos)
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

// Control subjects sit outside the EDGE stream: what is sent on them is for the
// moment and is not kept. ctl.<node>.hb carries a node's heartbeats (a
// heartbeat frame, plain NATS publish).
const (
	// ControlPrefix is the first token of every control subject.
	ControlPrefix = "ctl"
	// HeartbeatSubjects matches every node's heartbeat subject.
	HeartbeatSubjects = "ctl.*.hb"
)

// A node's own subjects besides its data and control subjects: the hub sends
// it requests on cmd.<node>.<what>, and replies reach it under its inbox
// prefix _INBOX.<node>, so that a node's credential can be limited to its own.
const (
	// CommandPrefix is the first token of the subjects of requests to a node.
	CommandPrefix = "cmd"
	// InboxPrefix is the first token of every node's inbox subjects.
	InboxPrefix = "_INBOX"
)

// NodeInbox returns a node's inbox prefix, for nats.CustomInboxPrefix.
func NodeInbox(node string) string { return InboxPrefix + "." + node }

// SeqCommand is the request the hub sends on cmd.<node>.seq for a strong
// read: the node answers with a SeqReply.
const SeqCommand = "seq"

// CommandSubject returns the subject of the request what to node.
func CommandSubject(node, what string) string { return CommandPrefix + "." + node + "." + what }

// SeqReply is a node's answer to SeqCommand: the newest seq of its epoch
// whose ingest it has acknowledged.
type SeqReply struct {
	Epoch   string `json:"epoch"`
	LastSeq uint64 `json:"last_seq"`
}

// ClockSubjects matches every node's clock subject: a node requests the
// hub's time on ctl.<node>.clock, with its own send time as the body's t0.
const ClockSubjects = "ctl.*.clock"

// ClockSubject returns the subject a node asks the hub's time on.
func ClockSubject(node string) string { return ControlPrefix + "." + node + ".clock" }

// ClockReply is the hub's answer on a clock subject: when it received the
// request (T1) and when it answered (T2), by its clock, in Unix nanoseconds.
// With the node's send and receive times t0 and t3, the node's offset to the
// hub is ((T1−t0)+(T2−t3))/2 and the round trip (t3−t0)−(T2−T1).
type ClockReply struct {
	T1 int64 `json:"t1"`
	T2 int64 `json:"t2"`
}

// HeartbeatSubject returns the subject a node publishes its heartbeats on.
func HeartbeatSubject(node string) string { return ControlPrefix + "." + node + ".hb" }

// ParseHeartbeatSubject returns the node of a ctl.<node>.hb subject.
func ParseHeartbeatSubject(subj string) (string, error) {
	parts := strings.Split(subj, ".")
	if len(parts) != 3 || parts[0] != ControlPrefix || parts[2] != "hb" || parts[1] == "" {
		return "", fmt.Errorf("subject %q is not of the form ctl.<node>.hb", subj)
	}
	return parts[1], nil
}

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
