package pattern

import (
	"encoding/base64"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestCursorRoundTrip(t *testing.T) {
	tests := []Position{
		{TS: 0, Node: "a", Epoch: "", Seq: 0},
		{TS: 1_714_564_800_000_000_000, Node: "pi-1", Epoch: "01HX3Q2Z9K", Seq: 42},
		{TS: -5, Node: "Z_9-x", Epoch: "e", Seq: math.MaxUint64},
		{TS: math.MaxInt64, Node: strings.Repeat("n", 64), Epoch: strings.Repeat("é", 100), Seq: 1},
		{TS: math.MinInt64, Node: "0", Epoch: "with\x00nul", Seq: 1 << 40},
	}
	for _, p := range tests {
		t.Run(p.Node, func(t *testing.T) {
			s := EncodeCursor(p)
			if strings.ContainsAny(s, "+/=") {
				t.Fatalf("cursor %q is not unpadded base64url", s)
			}
			got, err := DecodeCursor(s)
			if err != nil {
				t.Fatal(err)
			}
			if got != p {
				t.Fatalf("got %+v, want %+v", got, p)
			}
		})
	}
}

func TestCursorInvalid(t *testing.T) {
	good := EncodeCursor(Position{TS: 10, Node: "a", Epoch: "e", Seq: 3})
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	enc := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"not base64", "!!!", "after: cursor is not base64url"},
		{"padded", good + "=", "after: cursor is not base64url"},
		{"empty bytes", enc(nil) + "A", "after: cursor is not base64url"},
		{"version", enc(append([]byte{2}, raw[1:]...)), "after: cursor has an unknown version"},
		{"truncated", enc(raw[:len(raw)-1]), "after: malformed cursor: bad seq"},
		{"trailing", enc(append(append([]byte{}, raw...), 0)), "after: malformed cursor: 1 trailing bytes"},
		{"only version", enc([]byte{1}), "after: malformed cursor: bad ts"},
		{"node too long", enc([]byte{1, 0, 200, 1}), "after: malformed cursor: node length 200"},
		{"node past end", enc([]byte{1, 0, 5, 'a'}), "after: malformed cursor: node length 5"},
		{"bad node", EncodeCursor(Position{Node: "_hb", Epoch: "e"}), "after: malformed cursor: invalid name"},
		{"empty node", EncodeCursor(Position{Node: "", Epoch: "e"}), "after: malformed cursor: invalid name"},
		{"long", strings.Repeat("A", 2000), "after: cursor is 2000 bytes long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeCursor(tt.in)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error %q does not start with %q", err, tt.want)
			}
		})
	}
	// Prepare reports a bad cursor the same way.
	if _, err := Prepare(Request{Pattern: "all", After: "!!"}); !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "after: ") {
		t.Fatalf("Prepare: %v", err)
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(EncodeCursor(Position{TS: 10, Node: "a", Epoch: "e", Seq: 3}))
	f.Add(EncodeCursor(Position{TS: -1, Node: "node-7", Epoch: "", Seq: 0}))
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := DecodeCursor(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "after: ") {
				t.Fatalf("error %v: not ErrInvalid with the field name", err)
			}
			return
		}
		// A decoded cursor re-encodes to one that decodes to the same position.
		p2, err := DecodeCursor(EncodeCursor(p))
		if err != nil || p2 != p {
			t.Fatalf("round trip of %+v: %+v %v", p, p2, err)
		}
	})
}
