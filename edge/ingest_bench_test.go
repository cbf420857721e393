package edge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"
)

// benchBody returns an NDJSON body of n events: like the bench command's (about
// 180 bytes of sensor reading) or, tiny, the smallest object.
func benchBody(n int, tiny bool) []byte {
	var b bytes.Buffer
	for i := range n {
		if tiny {
			b.WriteString("{}\n")
			continue
		}
		fmt.Fprintf(&b, `{"ts":%d,"sensor":"sensor-%03d","site":"north","temp":%.14f,"humidity":%.13f,"gps":{"lat":50.%014d,"lon":4.%014d},"status":"ok"}`+"\n",
			1764028800000+int64(i)*86, i%500, 15+float64(i%2000)/100, 30+float64(i%5000)/100, i*7919%1e14, i*104729%1e14)
	}
	return b.Bytes()
}

// BenchmarkParseIngest parses NDJSON bodies. The peer, timed in the same run
// over the same body, is encoding/json's Decoder reading each value as a
// json.RawMessage, the least any parser that validates the body does; ratio is
// our time over the peer's.
func BenchmarkParseIngest(b *testing.B) {
	for _, c := range []struct {
		name string
		n    int
		tiny bool
	}{{"sensor/events=10000", 10000, false}, {"tiny/events=100000", 100000, true}} {
		body := benchBody(c.n, c.tiny)
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				in, err := ParseIngest(body, "application/x-ndjson", 1, 0)
				if err != nil || len(in) != c.n {
					b.Fatalf("%d events, %v", len(in), err)
				}
			}
			ours := b.Elapsed() / time.Duration(b.N)
			start := time.Now()
			for range b.N {
				dec := json.NewDecoder(bytes.NewReader(body))
				var raw json.RawMessage
				for {
					if err := dec.Decode(&raw); err == io.EOF {
						break
					} else if err != nil {
						b.Fatal(err)
					}
				}
			}
			peer := time.Since(start) / time.Duration(b.N)
			b.ReportMetric(float64(peer.Nanoseconds()), "peer-ns/op")
			b.ReportMetric(float64(ours)/float64(peer), "ratio")
		})
	}
}
