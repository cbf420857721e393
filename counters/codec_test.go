package counters

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/tributary-edge/tributary/stream"
)

func TestParseKey(t *testing.T) {
	tests := []struct {
		key, name, node string
		wantErr         string
	}{
		{key: "doors.edge-1", name: "doors", node: "edge-1"},
		{key: "A_b-9.x", name: "A_b-9", node: "x"},
		{key: "doors", wantErr: "not <name>.<node>"},
		{key: "doors.", wantErr: "node name is empty"},
		{key: ".edge", wantErr: "counter name is empty"},
		{key: "a.b.c", wantErr: `has '.' at position 2`},
		{key: "_hb.edge", wantErr: `counter name "_hb"`},
		{key: "doors.edge*", wantErr: `has '*'`},
		{key: "doors." + strings.Repeat("n", 65), wantErr: "is 65 bytes long"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			name, node, err := ParseKey(tt.key)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseKey(%q) error %v, want ErrInvalid saying %q", tt.key, err, tt.wantErr)
				}
				return
			}
			if err != nil || name != tt.name || node != tt.node {
				t.Fatalf("ParseKey(%q) = %q, %q, %v; want %q, %q", tt.key, name, node, err, tt.name, tt.node)
			}
			if Key(name, node) != tt.key {
				t.Fatalf("Key(%q, %q) = %q, want %q", name, node, Key(name, node), tt.key)
			}
		})
	}
}

func TestDecodePN(t *testing.T) {
	tests := []struct {
		in      string
		want    PN
		wantErr string
	}{
		{in: `{"p":5,"n":0}`, want: PN{P: 5}},
		{in: ` {"n":9223372036854775807,"p":1} `, want: PN{P: 1, N: math.MaxInt64}},
		{in: `{"p":5}`, wantErr: `fields "p" and "n"`},
		{in: `{"p":5,"n":0,"x":1}`, wantErr: `unknown field "x"`},
		{in: `{"p":-1,"n":0}`, wantErr: "must not be negative"},
		{in: `{"p":9223372036854775808,"n":0}`, wantErr: "cannot unmarshal"},
		{in: `{"p":1.5,"n":0}`, wantErr: "cannot unmarshal"},
		{in: `{"p":"5","n":0}`, wantErr: "cannot unmarshal"},
		{in: `{"p":5,"n":0}{}`, wantErr: "trailing data"},
		{in: `null`, wantErr: `fields "p" and "n"`},
		{in: `[1,2]`, wantErr: "cannot unmarshal"},
		{in: ``, wantErr: "EOF"},
		{in: `{"p":5,`, wantErr: "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := DecodePN([]byte(tt.in))
			if tt.wantErr != "" {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("DecodePN(%q) error %v, want ErrInvalid saying %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("DecodePN(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			if again, err := DecodePN(EncodePN(got)); err != nil || again != got {
				t.Fatalf("round trip of %+v: %+v, %v", got, again, err)
			}
		})
	}
}

// FuzzDecodePN checks that DecodePN never panics, accepts only valid states, and
// that whatever it accepts survives a round trip.
func FuzzDecodePN(f *testing.F) {
	for _, s := range []string{`{"p":5,"n":0}`, `{"p":0,"n":0}`, `{"n":1,"p":2}`, `{"p":-1,"n":0}`, `null`, `{}`, `{"p":1e3,"n":0}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodePN(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if !c.Valid() {
			t.Fatalf("accepted invalid %+v", c)
		}
		if again, err := DecodePN(EncodePN(c)); err != nil || again != c {
			t.Fatalf("round trip of %+v: %+v, %v", c, again, err)
		}
	})
}

// FuzzParseKey checks that ParseKey never panics, accepts only two valid names,
// and that Key rebuilds what it accepts.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{"doors.edge-1", "a.b.c", ".x", "x.", "_a.b", "a.*", "a.>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		name, node, err := ParseKey(key)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if stream.ValidateName("counter", name) != nil || stream.ValidateName("node", node) != nil {
			t.Fatalf("accepted bad names %q, %q", name, node)
		}
		if Key(name, node) != key {
			t.Fatalf("Key(%q, %q) = %q, want %q", name, node, Key(name, node), key)
		}
	})
}
