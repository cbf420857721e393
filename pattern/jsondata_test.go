package pattern

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// sameAsStdlib checks that decodeObject accepts exactly what encoding/json
// accepts as an object and yields the same values, numbers compared by value.
func sameAsStdlib(t *testing.T, in []byte) {
	t.Helper()
	var want any
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.UseNumber()
	stdErr := dec.Decode(&want)
	if stdErr == nil {
		// Decode stops after one value; Unmarshal also refuses trailing data.
		var discard any
		stdErr = json.Unmarshal(in, &discard)
	}
	_, isObj := want.(map[string]any)
	got := map[string]any{}
	err := decodeObject(in, got, nil)
	switch {
	case stdErr == nil && isObj && err != nil:
		t.Fatalf("%q: encoding/json accepts it, decodeObject says %v", in, err)
	case (stdErr != nil || !isObj) && err == nil:
		t.Fatalf("%q: encoding/json refuses it (%v), decodeObject accepts it as %v", in, stdErr, got)
	case err == nil:
		if msg := sameValue(got, want); msg != "" {
			t.Fatalf("%q: %s", in, msg)
		}
	}
}

// sameValue compares a decodeObject value with an encoding/json one decoded
// with UseNumber.
func sameValue(got, want any) string {
	switch w := want.(type) {
	case json.Number:
		switch g := got.(type) {
		case int:
			n, err := strconv.ParseInt(string(w), 10, 64)
			if err != nil || int64(g) != n {
				return fmt.Sprintf("int %d for number %s", g, w)
			}
		case float64:
			if strings.Trim(string(w), "-0123456789") == "" {
				if _, err := strconv.ParseInt(string(w), 10, 64); err == nil {
					return fmt.Sprintf("float %v for int64 literal %s", g, w)
				}
			}
			f, err := strconv.ParseFloat(string(w), 64)
			if err != nil || f != g {
				return fmt.Sprintf("float %v for number %s", g, w)
			}
		default:
			return fmt.Sprintf("%T for number %s", got, w)
		}
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%v for object %v", got, w)
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				return fmt.Sprintf("key %q missing", k)
			}
			if msg := sameValue(gv, wv); msg != "" {
				return msg
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%v for array %v", got, w)
		}
		for i := range w {
			if msg := sameValue(g[i], w[i]); msg != "" {
				return msg
			}
		}
	default:
		if !reflect.DeepEqual(got, want) {
			return fmt.Sprintf("%#v, want %#v", got, want)
		}
	}
	return ""
}

func TestDecodeObjectLikeStdlib(t *testing.T) {
	for _, in := range jsonSamples {
		t.Run(in, func(t *testing.T) { sameAsStdlib(t, []byte(in)) })
	}
}

var jsonSamples = []string{
	`{}`, ` { } `, `{"a":1}`, `{"a":-0}`, `{"a":0.5e-3,"b":1E+2,"c":-12.25}`,
	`{"a":9223372036854775807}`, `{"a":9223372036854775808}`, `{"a":-9223372036854775808}`,
	`{"a":-9223372036854775809}`, `{"a":123456789012345678}`, `{"a":1e400}`, `{"a":1e-400}`,
	`{"a":"x","a":"y"}`, `{"a":{"b":1},"a":{"c":2}}`, `{"a":[1,"2",true,false,null,{},[]]}`,
	`{"s":"\u00e9\ud83d\ude00\n\t\"\\\/\b\f\r"}`, `{"s":"\ud800"}`, `{"s":"\ud800\u0041"}`,
	`{"s":"\udc00\ud800"}`, `{"s":"\ud800\uzzzz"}`, "{\"s\":\"\xff\xfe\"}", "{\"s\":\"a\xc3\"}",
	"{\"\xff\":1}", `{"k\u0000":1}`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":-}`, `{"a":+1}`,
	`{"a":1e}`, `{"a":1e+}`, `{"a":tru}`, `{"a":nul}`, `{"a":NaN}`, `{"a":Infinity}`,
	`{"a":1,}`, `{,}`, `{"a"}`, `{"a":}`, `{"a" 1}`, `{a:1}`, `{'a':1}`, `{"a":1}}`, `{"a":1} x`,
	`{"a":[1,]}`, `{"a":[,1]}`, `{"a":[1 2]}`, `{"a":"\x"}`, `{"a":"\'"}`, "{\"a\":\"\t\"}",
	`{"a":"unterminated}`, `{"a":"\u12"}`, `[]`, `null`, `1`, `"s"`, ``, ` `, `{`, `{"a":1`,
	`{"a":[`, `{"a":{`, "{\"a\":1}\n", "\t{\"a\" : 1 }\r\n", `{"a":"\\"}`, `{"a":"x\\\"y"}`,
}

func TestDecodeObjectDepth(t *testing.T) {
	nest := func(n int) []byte {
		return []byte(`{"a":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `}`)
	}
	for _, n := range []int{maxDepth, maxDepth + 1} {
		sameAsStdlib(t, nest(n))
	}
	// The same limit applies to fields that are skipped.
	if err := decodeObject(nest(maxDepth+1), map[string]any{}, newFieldSet("b")); err == nil {
		t.Fatal("skipped field deeper than the limit accepted")
	}
	if err := decodeObject(nest(maxDepth), map[string]any{}, newFieldSet("b")); err != nil {
		t.Fatalf("skipped field at the limit: %v", err)
	}
}

func TestDecodeObjectKeep(t *testing.T) {
	in := []byte(`{"temp":21,"big":{"x":[1,2,{"y":"z"}]},"t\u0065st":true,"site":"n","skip":"\u00e9"}`)
	got := map[string]any{}
	if err := decodeObject(in, got, newFieldSet("temp", "test", "absent")); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"temp": 21, "test": true}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// Large sets and long names.
	long := strings.Repeat("k", 70)
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h", "temp", long, strings.Repeat("k", 63)}
	set := newFieldSet(names...)
	got = map[string]any{}
	in2 := []byte(`{"temp":1,"` + long + `":2,"` + strings.Repeat("k", 64) + `":3,"zz":4,"h":5}`)
	if err := decodeObject(in2, got, set); err != nil {
		t.Fatal(err)
	}
	if want := (map[string]any{"temp": 1, long: 2, "h": 5}); !reflect.DeepEqual(got, want) {
		t.Fatalf("large set: got %v, want %v", got, want)
	}
	for _, n := range names {
		if k, ok := set.lookup([]byte(n)); !ok || k != n {
			t.Fatalf("lookup %q: %q %v", n, k, ok)
		}
		if _, ok := newFieldSet(names[:3]...).lookup([]byte(n + "x")); ok {
			t.Fatalf("lookup %q found", n+"x")
		}
	}
	// An empty keep set decodes nothing but still checks the whole object.
	got = map[string]any{}
	if err := decodeObject(in, got, newFieldSet()); err != nil || len(got) != 0 {
		t.Fatalf("empty keep: %v %v", got, err)
	}
	// Skipping checks syntax only: a skipped number out of float64's range is
	// never converted, so it is no error.
	for _, in := range jsonSamples {
		err := decodeObject([]byte(in), map[string]any{}, newFieldSet())
		if want := isJSONObject([]byte(in)); (err == nil) != want {
			t.Errorf("%q: skipping every field gives %v; valid object: %v", in, err, want)
		}
	}
}

func FuzzDecodeData(f *testing.F) {
	for _, s := range jsonSamples {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		sameAsStdlib(t, in)
		// With a keep set, the fields kept decode alike and validity is the same.
		full := map[string]any{}
		fullErr := decodeObject(in, full, nil)
		part := map[string]any{}
		var names []string
		for k := range full {
			if len(k)%2 == 0 {
				names = append(names, k)
			}
		}
		set := names
		if len(in)%2 == 0 {
			// Enough absent names to make the set use its map.
			set = append(slices.Clone(names), "_0", "_1", "_2", "_3", "_4", "_5", "_6", "_7", "_8")
		}
		partErr := decodeObject(in, part, newFieldSet(set...))
		if fullErr == nil && partErr != nil {
			t.Fatalf("%q: full decode works, partial decode says %v", in, partErr)
		}
		if want := isJSONObject(in); (partErr == nil) != want {
			t.Fatalf("%q: partial decode says %v; valid object: %v", in, partErr, want)
		}
		if fullErr == nil {
			for _, k := range names {
				if !reflect.DeepEqual(full[k], part[k]) {
					t.Fatalf("%q: field %q: %v vs %v", in, k, full[k], part[k])
				}
			}
			if len(part) != len(names) {
				t.Fatalf("%q: partial decode has %d fields, want %d", in, len(part), len(names))
			}
		}
	})
}

// isJSONObject reports whether in is valid JSON whose top level is an object.
func isJSONObject(in []byte) bool {
	t := bytes.TrimLeft(in, " \t\r\n")
	return json.Valid(in) && len(t) > 0 && t[0] == '{'
}

func TestSimpleDecimalMatchesParseFloat(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	lits := []string{"0.1", "0.3", "-0.0", "123456789012.345", "-0.000000000000001", "999999999999999.", "1.5", "3.14159265358979"}
	for range 200_000 {
		intDigits := 1 + rng.IntN(8)
		fracDigits := 1 + rng.IntN(15-min(intDigits, 14))
		var b strings.Builder
		if rng.IntN(2) == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(byte('1' + rng.IntN(9)))
		for range intDigits - 1 {
			b.WriteByte(byte('0' + rng.IntN(10)))
		}
		b.WriteByte('.')
		for range fracDigits {
			b.WriteByte(byte('0' + rng.IntN(10)))
		}
		lits = append(lits, b.String())
	}
	for _, lit := range lits {
		want, err := strconv.ParseFloat(lit, 64)
		got, ok := simpleDecimal([]byte(lit))
		if err != nil || !ok {
			// Not a simple decimal (the "999999999999999." form): the slow path
			// handles it; it must not claim it.
			if ok {
				t.Fatalf("%s: claimed by the fast path, ParseFloat says %v", lit, err)
			}
			continue
		}
		if got != want || math.Signbit(got) != math.Signbit(want) {
			t.Fatalf("%s: %v, ParseFloat gives %v", lit, got, want)
		}
	}
}
