package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestClusterFlags(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		replicas int
		consumer string
		hubs     int
	}{
		{"a single hub keeps its consumer and one replica", nil, nil, 1, "materializer", 0},
		{"a cluster defaults to three replicas and a consumer named after the hub",
			[]string{"--cluster", "127.0.0.1:6222", "--peers", "nats://127.0.0.1:6223,nats://127.0.0.1:6224", "--name", "hub-a"}, nil,
			3, "materializer-hub-a", 3},
		{"the same peer list on every hub", nil, map[string]string{"TRIBUTARY_CLUSTER": "127.0.0.1:6223",
			"TRIBUTARY_PEERS": "nats://127.0.0.1:6222, nats://127.0.0.1:6223 ,nats://127.0.0.1:6224", "TRIBUTARY_NAME": "hub-b"},
			3, "materializer-hub-b", 3},
		{"one replica in a cluster, if asked", []string{"--cluster", "127.0.0.1:6222", "--peers", "nats://127.0.0.1:6223", "--replicas", "1", "--name", "x"}, nil,
			1, "materializer-x", 2},
		{"an external deployment with a named hub", []string{"--nats-url", "nats://n1:4222,nats://n2:4222", "--replicas", "3", "--name", "hub-c"}, nil,
			3, "materializer-hub-c", 0},
		{"an external deployment without a name keeps the old consumer", []string{"--nats-url", "nats://n1:4222", "--replicas", "3"}, nil,
			3, "materializer", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse(tt.args, env(tt.env), &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if c.replicas != tt.replicas || c.consumer != tt.consumer || c.hubs != tt.hubs {
				t.Fatalf("replicas %d, consumer %q, hubs %d; want %d, %q, %d", c.replicas, c.consumer, c.hubs, tt.replicas, tt.consumer, tt.hubs)
			}
		})
	}
	if c, _ := parse(nil, env(nil), &bytes.Buffer{}); c.name == "" || c.name != strings.TrimSpace(c.name) {
		t.Fatalf("default name %q", c.name)
	}
}

func TestBadClusterConfigurationSaysWhat(t *testing.T) {
	peers := []string{"--cluster", "127.0.0.1:6222", "--peers", "nats://127.0.0.1:6223,nats://127.0.0.1:6224"}
	tests := []struct {
		args []string
		want string
	}{
		{append(peers, "--replicas", "2"), "majority of replicas (2 of 2)"},
		{append(peers, "--replicas", "4"), "use 1, 3 or 5"},
		{append(peers, "--replicas", "5"), "the cluster has 3 hubs"},
		{[]string{"--cluster", "127.0.0.1:6222"}, "route URLs of the other servers"},
		{[]string{"--cluster", "127.0.0.1:6222", "--peers", "nats://127.0.0.1:6222"}, "route URLs of the other servers"},
		{[]string{"--peers", "nats://127.0.0.1:6223"}, "--peers needs --cluster"},
		{append(peers, "--nats-url", "nats://x:4222"), "exclude each other"},
		{[]string{"--replicas", "3"}, "start every hub with --cluster"},
		{append(peers, "--name", "hub.a"), "--name"},
		{[]string{"--cluster", "127.0.0.1:6222", "--peers", "http://127.0.0.1:6223"}, `scheme "http"`},
	}
	for _, tt := range tests {
		var stderr, stdout bytes.Buffer
		code := run(context.Background(), tt.args, env(nil), &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 mentioning %q", tt.args, code, stderr.String(), tt.want)
		}
	}
}
