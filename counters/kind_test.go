package counters

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestParseKind(t *testing.T) {
	for _, k := range []Kind{KindSum, KindMax, KindMin, KindLast} {
		got, err := ParseKind(k.String())
		if err != nil || got != k {
			t.Errorf("ParseKind(%q) = %v, %v; want %v", k.String(), got, err, k)
		}
	}
	if got := []string{KindSum.String(), KindMax.String(), KindMin.String(), KindLast.String()}; got[0] != "sum" || got[1] != "max" || got[2] != "min" || got[3] != "last" {
		t.Errorf("names %q, want sum, max, min, last", got)
	}
	for _, s := range []string{"", "Sum", "MAX", "avg", "last ", "kind(1)"} {
		if k, err := ParseKind(s); !errors.Is(err, ErrUnknownKind) {
			t.Errorf("ParseKind(%q) = %v, %v; want ErrUnknownKind", s, k, err)
		}
	}
	if got := Kind(9).String(); got != "kind(9)" {
		t.Errorf("Kind(9).String() = %q", got)
	}
	if Kind(4).Valid() || !KindLast.Valid() {
		t.Errorf("Valid: Kind(4) %v, KindLast %v", Kind(4).Valid(), KindLast.Valid())
	}
	if var0 := (Register{}); var0.Kind != KindSum {
		t.Errorf("the zero Register is a %v, want a sum", var0.Kind)
	}
}

func TestKindJSON(t *testing.T) {
	type body struct {
		Kind Kind `json:"kind"`
	}
	for _, k := range []Kind{KindSum, KindMax, KindMin, KindLast} {
		b, err := json.Marshal(body{k})
		if want := `{"kind":"` + k.String() + `"}`; err != nil || string(b) != want {
			t.Fatalf("Marshal(%v) = %s, %v; want %s", k, b, err, want)
		}
		var got body
		if err := json.Unmarshal(b, &got); err != nil || got.Kind != k {
			t.Fatalf("Unmarshal(%s) = %v, %v", b, got.Kind, err)
		}
	}
	if _, err := json.Marshal(body{Kind(7)}); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("Marshal(Kind(7)) error %v, want ErrUnknownKind", err)
	}
	for _, in := range []string{`{"kind":"avg"}`, `{"kind":""}`, `{"kind":2}`} {
		var got body
		if err := json.Unmarshal([]byte(in), &got); err == nil {
			t.Errorf("Unmarshal(%s) = %v, want an error", in, got.Kind)
		}
	}
}
