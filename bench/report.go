package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
)

// figures are the run's results by key, in the order they were taken, for the
// JSON line the bench ends with.
type figures struct {
	keys []string
	vals map[string]float64
}

func newFigures() *figures { return &figures{vals: map[string]float64{}} }

func (f *figures) add(key string, v float64) {
	if _, ok := f.vals[key]; !ok {
		f.keys = append(f.keys, key)
	}
	f.vals[key] = v
}

// line is the figures as one JSON object, keys in the order taken; rates are
// rounded to whole numbers, the rest to three decimals.
func (f *figures) line() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range f.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		v := f.vals[k]
		switch {
		case math.IsNaN(v) || math.IsInf(v, 0):
			b.WriteString("null")
		case strings.HasSuffix(k, "_per_s") || strings.HasSuffix(k, "_nodes") || v == math.Trunc(v):
			fmt.Fprintf(&b, "%.0f", v)
		default:
			fmt.Fprintf(&b, "%.3f", v)
		}
	}
	b.WriteByte('}')
	return b.String()
}

// getBody GETs u and returns a 200 answer's body.
func getBody(u string) ([]byte, error) {
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return b, nil
}
