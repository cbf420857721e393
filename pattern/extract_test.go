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
	"time"
)

func TestExtract(t *testing.T) {
	str := func(raw, s string) Value {
		return Value{Kind: JSONString, Raw: []byte(raw), plain: s == raw[1:len(raw)-1]}
	}
	num := func(raw string, f float64) Value { return Value{Kind: JSONNumber, Num: f, Raw: []byte(raw)} }
	null := Value{Kind: JSONNull, Raw: []byte("null")}
	tests := []struct {
		name  string
		paths []string // dotted
		data  string
		want  []Value
		err   string
	}{
		{"top level", []string{"temp", "site"}, `{"site":"north","temp":21.5}`,
			[]Value{num("21.5", 21.5), str(`"north"`, "north")}, ""},
		{"nested", []string{"gps.lat", "gps.lon", "gps"}, `{"gps" : {"lat":45.1, "lon":-7}}`,
			[]Value{num("45.1", 45.1), num("-7", -7), {Kind: JSONObject, Raw: []byte(`{"lat":45.1, "lon":-7}`)}}, ""},
		{"missing and null differ", []string{"a", "b"}, `{"a":null}`, []Value{null, {}}, ""},
		{"through a non-object", []string{"gps.lat", "a.b"}, `{"gps":[1,2],"a":"x"}`, []Value{{}, {}}, ""},
		{"through null", []string{"gps.lat"}, `{"gps":null}`, []Value{{}}, ""},
		{"last duplicate wins", []string{"a", "gps.lat", "gps.lon"}, `{"a":1,"gps":{"lat":1},"a":2,"gps":{"lon":3}}`,
			[]Value{num("2", 2), {}, num("3", 3)}, ""},
		{"duplicate inside", []string{"g.x"}, `{"g":{"x":1,"x":"s"}}`, []Value{str(`"s"`, "s")}, ""},
		{"escaped key", []string{"temp", "é"}, `{"t\u0065mp":true,"\u00e9":false}`,
			[]Value{{Kind: JSONBool, Bool: true, Raw: []byte("true")}, {Kind: JSONBool, Raw: []byte("false")}}, ""},
		{"same path twice", []string{"a", "a"}, `{"a":[1]}`,
			[]Value{{Kind: JSONArray, Raw: []byte("[1]")}, {Kind: JSONArray, Raw: []byte("[1]")}}, ""},
		{"escaped string", []string{"s"}, `{"s":"a\nb"}`, []Value{str(`"a\nb"`, "a\nb")}, ""},
		{"big numbers", []string{"a", "b", "c"}, `{"a":12345678901234567890,"b":-0,"c":1.5e300}`,
			[]Value{num("12345678901234567890", 12345678901234567890), num("-0", math.Copysign(0, -1)), num("1.5e300", 1.5e300)}, ""},
		{"out of range at a path", []string{"a"}, `{"a":1e400}`, []Value{{}}, "out of float64's range"},
		{"out of range elsewhere", []string{"a"}, `{"a":1,"b":1e400,"c":{"d":1e400}}`, []Value{num("1", 1)}, ""},
		{"syntax error after the path", []string{"a"}, `{"a":1,"b":tru}`, []Value{{}}, "bad literal"},
		{"not an object", []string{"a"}, `[{"a":1}]`, []Value{{}}, "expected a JSON object"},
		{"empty data", []string{"a"}, ``, []Value{{}}, "expected a JSON object"},
		{"trailing data", []string{"a"}, `{"a":1} 2`, []Value{{}}, "trailing data"},
		{"no paths", nil, `{"a":1}`, []Value{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var paths [][]string
			for _, p := range tt.paths {
				paths = append(paths, strings.Split(p, "."))
			}
			x := NewExtractor(paths)
			out := make([]Value, x.Len())
			for i := range out {
				out[i] = Value{Kind: JSONBool} // stale values must go
			}
			err := x.Extract([]byte(tt.data), out)
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("error %v, want %q", err, tt.err)
			}
			for i := range tt.want {
				g, w := out[i], tt.want[i]
				if g.Kind != w.Kind || math.Float64bits(g.Num) != math.Float64bits(w.Num) || g.Bool != w.Bool ||
					!bytes.Equal(g.Raw, w.Raw) || g.plain != w.plain {
					t.Errorf("path %s: got %v %v %v %q plain=%v, want %v %v %v %q plain=%v", tt.paths[i],
						g.Kind, g.Num, g.Bool, g.Raw, g.plain, w.Kind, w.Num, w.Bool, w.Raw, w.plain)
				}
			}
		})
	}
}

func TestValueText(t *testing.T) {
	x := NewExtractor([][]string{{"a"}, {"b"}, {"c"}, {"d"}})
	out := make([]Value, 4)
	if err := x.Extract([]byte("{\"a\":\"plain\",\"b\":\"\\u00e9\\ud83d\\ude00\\\"\",\"c\":\"caf\xc3\xa9 \xff\",\"d\":{\"k\":[1,\"x\"]}}"), out); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"plain", "é😀\"", "café \uFFFD", ""} {
		if got := out[i].Str(); got != want {
			t.Errorf("path %d: Str %q, want %q", i, got, want)
		}
		if got := string(out[i].AppendStr([]byte("<"))); got != "<"+want {
			t.Errorf("path %d: AppendStr %q, want %q", i, got, "<"+want)
		}
	}
	got, err := out[3].Decode()
	if want := map[string]any{"k": []any{1.0, "x"}}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Decode: %v %v, want %v", got, err, want)
	}
	if got, err := (Value{}).Decode(); got != nil || err != nil {
		t.Errorf("Decode of Missing: %v %v", got, err)
	}
}

func TestExtractManyKeys(t *testing.T) {
	// More than 8 children at a level switch the lookup to a map.
	var paths [][]string
	var b strings.Builder
	b.WriteString(`{"zz":0`)
	for i := range 12 {
		paths = append(paths, []string{"o", "k" + strconv.Itoa(i)})
		fmt.Fprintf(&b, `,"o":{"k%d":%d,"x":1}`, i, i)
	}
	b.WriteString(`,"o":{"k3":3,"k11":11,"k99":0}}`)
	x := NewExtractor(paths)
	out := make([]Value, x.Len())
	if err := x.Extract([]byte(b.String()), out); err != nil {
		t.Fatal(err)
	}
	for i, v := range out {
		want := Missing
		if i == 3 || i == 11 {
			want = JSONNumber
		}
		if v.Kind != want || want == JSONNumber && v.Num != float64(i) {
			t.Errorf("o.k%d: %v %v, want %v", i, v.Kind, v.Num, want)
		}
	}
}

// extractLikeStdlib checks Extract of paths over in against encoding/json.
func extractLikeStdlib(t *testing.T, in []byte, paths [][]string) {
	t.Helper()
	var tree any
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.UseNumber()
	valid := dec.Decode(&tree) == nil && json.Valid(in)
	obj, isObj := tree.(map[string]any)
	x := NewExtractor(paths)
	out := make([]Value, len(paths))
	err := x.Extract(in, out)
	if !valid || !isObj {
		if err == nil {
			t.Fatalf("%q: encoding/json refuses it as an object, Extract accepts it", in)
		}
		return
	}
	wantErr := false
	wants := make([]any, len(paths))
	found := make([]bool, len(paths))
	for i, p := range paths {
		wants[i], found[i] = walk(obj, p)
		if n, ok := wants[i].(json.Number); ok && found[i] {
			if _, perr := strconv.ParseFloat(string(n), 64); perr != nil {
				wantErr = true
			}
		}
	}
	if wantErr != (err != nil) {
		t.Fatalf("%q %q: Extract error %v, want an error: %v", in, paths, err, wantErr)
	}
	for i, v := range out {
		if err != nil || !found[i] {
			if v.Kind != Missing || v.Raw != nil {
				t.Fatalf("%q: path %q: %v %q, want missing", in, paths[i], v.Kind, v.Raw)
			}
			continue
		}
		var got any
		d := json.NewDecoder(bytes.NewReader(v.Raw))
		d.UseNumber()
		if derr := d.Decode(&got); derr != nil || !reflect.DeepEqual(got, wants[i]) || !json.Valid(v.Raw) {
			t.Fatalf("%q: path %q: Raw %q decodes to %#v (%v), want %#v", in, paths[i], v.Raw, got, derr, wants[i])
		}
		kind := Missing
		switch w := wants[i].(type) {
		case nil:
			kind = JSONNull
		case bool:
			kind = JSONBool
			if v.Bool != w {
				t.Fatalf("%q: path %q: Bool %v, want %v", in, paths[i], v.Bool, w)
			}
		case json.Number:
			kind = JSONNumber
			f, _ := strconv.ParseFloat(string(w), 64)
			if math.Float64bits(v.Num) != math.Float64bits(f) {
				t.Fatalf("%q: path %q: Num %v, want %v", in, paths[i], v.Num, f)
			}
		case string:
			kind = JSONString
			if v.Str() != w {
				t.Fatalf("%q: path %q: Str %q, want %q", in, paths[i], v.Str(), w)
			}
		case []any:
			kind = JSONArray
		case map[string]any:
			kind = JSONObject
		}
		if v.Kind != kind {
			t.Fatalf("%q: path %q: kind %v, want %v", in, paths[i], v.Kind, kind)
		}
		var std any
		stdErr := json.Unmarshal(v.Raw, &std)
		if got, err := v.Decode(); (err == nil) != (stdErr == nil) || err == nil && !reflect.DeepEqual(got, std) {
			t.Fatalf("%q: path %q: Decode %#v %v, encoding/json %#v %v", in, paths[i], got, err, std, stdErr)
		}
	}
}

func walk(v any, path []string) (any, bool) {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// keyPaths lists the key paths of tree down to depth 3, in a fixed order.
func keyPaths(tree any, prefix []string, out [][]string) [][]string {
	m, ok := tree.(map[string]any)
	if !ok || len(prefix) >= 3 {
		return out
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p := append(slices.Clone(prefix), k)
		out = append(out, p)
		out = keyPaths(m[k], p, out)
	}
	return out
}

func TestExtractLikeStdlib(t *testing.T) {
	for _, in := range jsonSamples {
		var tree any
		_ = json.Unmarshal([]byte(in), &tree)
		paths := append(keyPaths(tree, nil, nil), []string{"a"}, []string{"a", "b"}, []string{"zz"})
		t.Run(in, func(t *testing.T) { extractLikeStdlib(t, []byte(in), paths) })
	}
}

func FuzzExtract(f *testing.F) {
	for _, s := range jsonSamples {
		f.Add([]byte(s), "a,a.b,s")
	}
	f.Add([]byte(`{"gps":{"lat":1,"lat":{"x":2}},"gps":{"lon":[3]},"t\u0065mp":4}`), "gps.lat.x,gps.lon,temp,gps")
	f.Fuzz(func(t *testing.T, in []byte, spec string) {
		var paths [][]string
		for _, p := range strings.Split(spec, ",") {
			if p != "" {
				paths = append(paths, strings.Split(p, "."))
			}
		}
		var tree any
		d := json.NewDecoder(bytes.NewReader(in))
		d.UseNumber()
		if d.Decode(&tree) == nil {
			// The data's own keys, so that most paths hit something.
			paths = keyPaths(tree, nil, paths)
		}
		if len(paths) > 64 {
			paths = paths[:64]
		}
		extractLikeStdlib(t, in, paths)
	})
}

// benchEvent is shaped like bench/main.go's makeEvent: about 190 bytes.
func benchEvent(rng *rand.Rand, i int) []byte {
	sites := []string{"north", "south", "east", "west"}
	b, _ := json.Marshal(map[string]any{
		"ts":       time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC).UnixMilli() + int64(i),
		"sensor":   fmt.Sprintf("sensor-%03d", i%500),
		"site":     sites[i%4],
		"temp":     15 + rng.Float64()*20,
		"humidity": 30 + rng.Float64()*50,
		"gps":      map[string]float64{"lat": 50 + rng.Float64(), "lon": 4 + rng.Float64()},
		"status":   "ok",
	})
	return b
}

// BenchmarkExtract reads temp (and, in the second case, site and gps.lat
// too) from makeEvent-shaped data, and reports the time per event of the plain
// way, encoding/json into a map and a lookup, as measured in the same run.
func BenchmarkExtract(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	evs := make([][]byte, 1024)
	for i := range evs {
		evs[i] = benchEvent(rng, i)
	}
	for _, paths := range [][][]string{{{"temp"}}, {{"temp"}, {"site"}, {"gps", "lat"}}} {
		name := fmt.Sprint(len(paths), "-paths")
		b.Run(name, func(b *testing.B) {
			x := NewExtractor(paths)
			out := make([]Value, x.Len())
			var sum float64
			b.ReportAllocs()
			b.SetBytes(int64(len(evs[0])))
			i := 0
			for b.Loop() {
				if err := x.Extract(evs[i%len(evs)], out); err != nil {
					b.Fatal(err)
				}
				sum += out[0].Num
				i++
			}
			ours := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			peer := peerExtractNs(evs, paths)
			b.ReportMetric(peer, "peer-ns/op")
			b.ReportMetric(peer/ours, "x-peer")
		})
	}
}

// peerExtractNs returns the nanoseconds per event of encoding/json.Unmarshal
// into a map followed by the path lookups, over at least half a second.
func peerExtractNs(evs [][]byte, paths [][]string) float64 {
	var n int
	var sink float64
	start := time.Now()
	for time.Since(start) < 500*time.Millisecond {
		for _, ev := range evs {
			var m map[string]any
			if json.Unmarshal(ev, &m) != nil {
				continue
			}
			for _, p := range paths {
				if v, ok := walk(m, p); ok {
					if f, ok := v.(float64); ok {
						sink += f
					}
				}
			}
			n++
		}
	}
	_ = sink
	return float64(time.Since(start).Nanoseconds()) / float64(n)
}

func TestExtractDepth(t *testing.T) {
	nest := func(n int) []byte {
		return []byte(`{"a":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `,"o":` +
			strings.Repeat(`{"o":`, n-1) + "1" + strings.Repeat("}", n-1) + `}`)
	}
	for _, paths := range [][][]string{{{"b"}}, {{"a"}}, {{"o", "o", "o"}}} {
		x := NewExtractor(paths)
		out := make([]Value, 1)
		if err := x.Extract(nest(maxDepth), out); err != nil {
			t.Errorf("%v at the depth limit: %v", paths, err)
		}
		if err := x.Extract(nest(maxDepth+1), out); err == nil {
			t.Errorf("%v beyond the depth limit accepted", paths)
		}
		// The limit is encoding/json's.
		extractLikeStdlib(t, nest(maxDepth), paths)
		extractLikeStdlib(t, nest(maxDepth+1), paths)
	}
}

// TestScannerEveryByte puts every byte value at every offset of the eight-byte
// steps of the string and digit scanners, and compares them with the
// byte-at-a-time ones.
func TestScannerEveryByte(t *testing.T) {
	for c := range 256 {
		for at := range 20 {
			s := []byte(`"` + strings.Repeat("a", 20) + `"` + strings.Repeat("x", 8))
			s[1+at] = byte(c)
			d := jsonDecoder{b: s}
			_, wantEnd, wantPlain := d.scanString()
			end, plain := stringEnd8(s, 0)
			if plain != wantPlain || plain && end != wantEnd {
				t.Fatalf("string with %#x at %d: end %d plain %v, want %d %v", c, at, end, plain, wantEnd, wantPlain)
			}
			_, stdErr := d.str()
			if _, err := skipString(s, 0); (err == nil) != (stdErr == nil) {
				t.Fatalf("string with %#x at %d: skipString %v, str %v", c, at, err, stdErr)
			}
			n := []byte("1" + strings.Repeat("2", 20) + "," + strings.Repeat("x", 8))
			n[1+at] = byte(c)
			want := 1
			for want < len(n) && n[want] >= '0' && n[want] <= '9' {
				want++
			}
			if got := digits8(n, 1); got != want {
				t.Fatalf("digits with %#x at %d: end %d, want %d", c, at, got, want)
			}
		}
	}
}
