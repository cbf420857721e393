package stream

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestEventsRoundTrip(t *testing.T) {
	recs := []Record{
		{Seq: 1, TS: 1_700_000_000_000_000_000, Data: json.RawMessage(`{"temp":21.5}`)},
		{Seq: 2, TS: 1_699_999_999_000_000_000, Data: json.RawMessage(`{"a":{"b":[1,2]}}`)},
		{Seq: 7, TS: -5, Data: json.RawMessage(`{}`)},
	}
	b, err := EncodeEvents(nil, "pi-1", "ep0", "temps", recs)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.Kind != KindEvents || f.Node != "pi-1" || f.Epoch != "ep0" || f.Stream != "temps" {
		t.Fatalf("header: %+v", f)
	}
	if !reflect.DeepEqual(f.Events, recs) {
		t.Fatalf("records:\n got %+v\nwant %+v", f.Events, recs)
	}
}

func TestControlRoundTrip(t *testing.T) {
	drops := []Drop{{Epoch: "e1", FirstSeq: 3, LastSeq: 9, Count: 7, Reason: ReasonBufferFull}}
	b, err := EncodeControl(KindDrops, "n", "e1", drops)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Drops, drops) {
		t.Fatalf("drops: got %+v", f.Drops)
	}
	ctr := []CounterState{{Name: "doors", P: 10, N: 3}}
	b, _ = EncodeControl(KindCounters, "n", "e1", ctr)
	if f, err = Decode(b); err != nil || !reflect.DeepEqual(f.Counters, ctr) {
		t.Fatalf("counters: %+v %v", f, err)
	}
	hb := Heartbeat{Buffered: 5, LastSeq: 9, Time: 42}
	b, _ = EncodeControl(KindHeartbeat, "n", "e1", hb)
	if f, err = Decode(b); err != nil || *f.Heartbeat != hb {
		t.Fatalf("heartbeat: %+v %v", f, err)
	}
}

func TestDecodeRejects(t *testing.T) {
	good, _ := EncodeEvents(nil, "n", "e", "s", []Record{{Seq: 1, Data: json.RawMessage(`{}`)}})
	withCRC := func(b []byte) []byte { return appendCRC(b, 0) }
	tests := []struct {
		name  string
		frame []byte
		want  string
	}{
		{"empty", nil, "too short"},
		{"version", append([]byte{9}, good[1:]...), "unknown version 9"},
		{"checksum", append(append([]byte{}, good[:len(good)-1]...), good[len(good)-1]^1), "checksum"},
		{"truncated", withCRC(good[:len(good)-6]), "more than the frame can hold"},
		{"truncated data", withCRC([]byte{1, 1, 1, 'n', 1, 'e', 1, 's', 1, 1, 0, 50, '{', '}', 0, 0, 0, 0, 0}), "runs past the end"},
		{"kind", withCRC([]byte{1, 77, 1, 'n', 1, 'e'}), "unknown kind 77"},
		{"bad node", withCRC(append([]byte{1, 1, 3}, "a.b"...)), `node name "a.b"`},
		{"not object", mustEvents(t, []Record{{Seq: 1, Data: json.RawMessage(`[1]`)}}), "not a JSON object"},
		{"zero seq", mustEvents(t, []Record{{Seq: 0, Data: json.RawMessage(`{}`)}}), "seqs start at 1"},
		{"bad drop", mustControl(t, KindDrops, []Drop{{Epoch: "e", FirstSeq: 5, LastSeq: 2, Count: 1, Reason: ReasonMaxAge}}), "empty"},
		{"negative counter", mustControl(t, KindCounters, []CounterState{{Name: "c", P: -1}}), "negative"},
		{"unknown field", mustControl(t, KindHeartbeat, map[string]int{"bogus": 1}), "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.frame)
			if err == nil || !errors.Is(err, ErrBadFrame) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Decode error = %v, want ErrBadFrame containing %q", err, tt.want)
			}
		})
	}
}

func mustEvents(t *testing.T, recs []Record) []byte {
	t.Helper()
	// Bypass EncodeEvents' checks to build frames a hostile peer could send.
	b := []byte{Version, byte(KindEvents)}
	b = appendString(b, "n")
	b = appendString(b, "e")
	b = appendString(b, "s")
	b = append(b, byte(len(recs)))
	for _, r := range recs {
		b = append(b, byte(r.Seq), 0, byte(len(r.Data)))
		b = append(b, r.Data...)
	}
	return appendCRC(b, 0)
}

func mustControl(t *testing.T, k Kind, v any) []byte {
	t.Helper()
	b, err := EncodeControl(k, "n", "e", v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"a", true}, {"pi-4_b", true}, {"0", true}, {strings.Repeat("x", 64), true},
		{"", false}, {"_hb", false}, {"-a", false}, {"a.b", false}, {"a*", false}, {"a>", false},
		{"a b", false}, {strings.Repeat("x", 65), false}, {"é", false},
	}
	for _, tt := range tests {
		err := ValidateName("node", tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
	for _, in := range []string{"My Host.local", "__x", "", "a.b.c"} {
		if err := ValidateName("node", CleanName(in)); err != nil {
			t.Errorf("CleanName(%q) = %q: %v", in, CleanName(in), err)
		}
	}
}

func TestEventTime(t *testing.T) {
	tests := []struct {
		raw  string
		ns   int64
		ok   bool
		fail bool
	}{
		{``, 0, false, false},
		{`"2024-01-02T03:04:05.5Z"`, 1704164645500000000, true, false},
		{`1704164645500`, 1704164645500000000, true, false},
		{`"yesterday"`, 0, false, true},
		{`1.5`, 0, false, true},
		{`true`, 0, false, true},
	}
	for _, tt := range tests {
		ns, ok, err := EventTime(json.RawMessage(tt.raw))
		if ns != tt.ns || ok != tt.ok || (err != nil) != tt.fail {
			t.Errorf("EventTime(%s) = %d, %v, %v", tt.raw, ns, ok, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	good, _ := EncodeEvents(nil, "n", "e", "s", []Record{{Seq: 1, TS: 5, Data: json.RawMessage(`{"x":1}`)}, {Seq: 3, TS: 4, Data: json.RawMessage(`{}`)}})
	f.Add(good)
	ctl, _ := EncodeControl(KindDrops, "n", "e", []Drop{{Epoch: "e", FirstSeq: 1, LastSeq: 2, Count: 2, Reason: ReasonMaxAge}})
	f.Add(ctl)
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("error %v does not wrap ErrBadFrame", err)
			}
			return
		}
		if fr.Kind == KindEvents {
			// A frame that decodes re-encodes to the same bytes.
			again, err := EncodeEvents(nil, fr.Node, fr.Epoch, fr.Stream, fr.Events)
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			if string(again) != string(b) {
				t.Fatalf("re-encoded frame differs")
			}
		}
	})
}
