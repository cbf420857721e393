package natsjs

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tributary-edge/tributary/stream"
)

// DuplicateWindow is how long JetStream remembers Nats-Msg-Id values of the EDGE
// stream. Exactly-once does not depend on it: the hub's index is unique on
// (node, epoch, seq); the window only saves the hub work.
const DuplicateWindow = 15 * time.Minute

// StreamConfig returns the definition of the EDGE stream: file storage, subjects
// edge.*.*, events kept for retention (0 means forever), replicated replicas times.
// This is data only; the hub creates or updates the stream with it.
func StreamConfig(retention time.Duration, replicas int) jetstream.StreamConfig {
	if replicas < 1 {
		replicas = 1
	}
	return jetstream.StreamConfig{
		Name:        stream.JetStreamName,
		Description: "Tributary: batches, drop reports, counter states and heartbeats from edge agents",
		Subjects:    []string{stream.StreamSubjects},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      retention,
		Duplicates:  DuplicateWindow,
		Replicas:    replicas,
		Discard:     jetstream.DiscardOld,
		MaxMsgSize:  stream.MaxFrameBytes,
	}
}
