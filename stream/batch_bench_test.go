package stream

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"testing"
	"time"

	"github.com/klauspost/compress/dict"
	"github.com/klauspost/compress/zstd"
)

// benchRecords returns n records like the ones bench/main.go's makeEvent makes,
// the event at index first+i getting seq first+i+1. Event times are 86.4 ms
// apart (a day over a million events, as the bench spreads them); ingest times
// are the edge clock at commit, 1 to 100 µs apart at nanosecond precision, which
// costs more bytes than events committed together would.
func benchRecords(n, first int) []Record { return makeRecords(n, first, false) }

// makeRecords is benchRecords; rounded keeps readings to the one or two
// decimals a real sensor reports, instead of the bench's 16 random digits.
func makeRecords(n, first int, rounded bool) []Record {
	rng := rand.New(rand.NewSource(int64(first)))
	start := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	step := 24 * time.Hour / 1_000_000
	ingest := start.Add(time.Hour).UnixNano()
	sites := []string{"north", "south", "east", "west"}
	recs := make([]Record, n)
	for j := range recs {
		i := first + j
		ts := start.Add(time.Duration(i) * step)
		temp, hum, lat, lon := 15+rng.Float64()*20, 30+rng.Float64()*50, 50+rng.Float64(), 4+rng.Float64()
		if rounded {
			temp, hum = math.Round(temp*10)/10, math.Round(hum)
			lat, lon = math.Round(lat*1e4)/1e4, math.Round(lon*1e4)/1e4
		}
		data, _ := json.Marshal(map[string]any{
			"ts":       ts.UnixMilli(),
			"sensor":   fmt.Sprintf("sensor-%03d", i%500),
			"site":     sites[i%4],
			"temp":     temp,
			"humidity": hum,
			"gps":      map[string]float64{"lat": lat, "lon": lon},
			"status":   "ok",
		})
		ingest += 1000 + rng.Int63n(99_000)
		recs[j] = Record{Seq: uint64(i + 1), TS: ts.UnixNano(), Ingest: ingest, Data: data}
	}
	return recs
}

// dataBytes is the size of the events' JSON: the bytes the peer, one JetStream
// message per event as the bench publishes, sends as payloads.
func dataBytes(recs []Record) int {
	n := 0
	for _, r := range recs {
		n += len(r.Data)
	}
	return n
}

type wireCase struct {
	name    string
	version byte
	codec   Codec
}

var wireCases = []wireCase{{"v1", Version1, CodecNone}, {"v2-none", Version2, CodecNone}, {"v2-zstd", Version2, CodecZstd}}

func (c wireCase) encode(dst []byte, recs []Record) ([]byte, error) {
	if c.version == Version1 {
		return EncodeEvents(dst, "bench", "01HZX3K9Q7", "sensors", recs)
	}
	return EncodeEventsV2(dst, c.codec, "bench", "01HZX3K9Q7", "sensors", recs)
}

// reportSize reports the frame's bytes per event beside the peer's (the event's
// JSON alone) and their ratio.
func reportSize(b *testing.B, frame []byte, recs []Record) {
	per := float64(len(frame)) / float64(len(recs))
	peer := float64(dataBytes(recs)) / float64(len(recs))
	b.ReportMetric(per, "B/event")
	b.ReportMetric(peer, "json-B/event")
	b.ReportMetric(per/peer, "ratio")
}

// BenchmarkEncode encodes events frames in each version and codec. MB/s are of
// the events' JSON; ratio is the frame's bytes per event over one JSON message
// per event.
func BenchmarkEncode(b *testing.B) {
	for _, n := range []int{100, 1000} {
		recs := benchRecords(n, 0)
		for _, c := range wireCases {
			b.Run(fmt.Sprintf("%s/batch=%d", c.name, n), func(b *testing.B) {
				b.SetBytes(int64(dataBytes(recs)))
				var frame []byte
				for b.Loop() {
					var err error
					if frame, err = c.encode(frame[:0], recs); err != nil {
						b.Fatal(err)
					}
				}
				reportSize(b, frame, recs)
			})
		}
	}
}

// BenchmarkDecode decodes the frames BenchmarkEncode makes.
func BenchmarkDecode(b *testing.B) {
	for _, n := range []int{100, 1000} {
		recs := benchRecords(n, 0)
		for _, c := range wireCases {
			b.Run(fmt.Sprintf("%s/batch=%d", c.name, n), func(b *testing.B) {
				frame, err := c.encode(nil, recs)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(dataBytes(recs)))
				for b.Loop() {
					if _, err := Decode(frame); err != nil {
						b.Fatal(err)
					}
				}
				reportSize(b, frame, recs)
			})
		}
	}
}

// BenchmarkZstdLevel compares the zstd levels the wire format could use, on
// uncompressed version 2 bodies, with the options the package's encoder has.
// It is how zstdLevel was chosen.
func BenchmarkZstdLevel(b *testing.B) {
	for _, n := range []int{100, 1000} {
		recs := benchRecords(n, 0)
		body, err := appendEvents(nil, "bench", "01HZX3K9Q7", "sensors", recs, true)
		if err != nil {
			b.Fatal(err)
		}
		for _, level := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression} {
			enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(level), zstd.WithEncoderCRC(false))
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("%s/batch=%d/encode", level, n), func(b *testing.B) {
				b.SetBytes(int64(dataBytes(recs)))
				var out []byte
				for b.Loop() {
					out = enc.EncodeAll(body, out[:0])
				}
				b.ReportMetric(float64(len(out)+3+4)/float64(n), "B/event")
			})
			b.Run(fmt.Sprintf("%s/batch=%d/decode", level, n), func(b *testing.B) {
				z := enc.EncodeAll(body, nil)
				b.SetBytes(int64(dataBytes(recs)))
				var out []byte
				for b.Loop() {
					if out, err = zstdDecoder().DecodeAll(z, out[:0]); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkZstdWindow measures the encoder's window: bytes per event, speed,
// and the memory a fresh encoder allocates for its first batch (enc-B), at
// the default 8 MiB and at the smaller windows an edge could use (the
// package uses zstdWindow with the lower-memory option).
func BenchmarkZstdWindow(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		recs := benchRecords(n, 0)
		body, err := appendEvents(nil, "bench", "01HZX3K9Q7", "sensors", recs, true)
		if err != nil {
			b.Fatal(err)
		}
		for _, w := range []struct {
			name   string
			window int
			low    bool
		}{{"8MiB", 8 << 20, false}, {"1MiB", 1 << 20, false}, {"256KiB-lowmem", 256 << 10, true}, {"64KiB-lowmem", 64 << 10, true}} {
			opts := func() []zstd.EOption {
				return []zstd.EOption{zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstdLevel), zstd.WithEncoderCRC(false),
					zstd.WithSingleSegment(true), zstd.WithWindowSize(w.window), zstd.WithLowerEncoderMem(w.low)}
			}
			b.Run(fmt.Sprintf("window=%s/batch=%d", w.name, n), func(b *testing.B) {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				enc, err := zstd.NewWriter(nil, opts()...)
				if err != nil {
					b.Fatal(err)
				}
				out := enc.EncodeAll(body, nil)
				runtime.ReadMemStats(&after)
				encBytes := after.TotalAlloc - before.TotalAlloc - uint64(cap(out))
				b.SetBytes(int64(dataBytes(recs)))
				for b.Loop() {
					out = enc.EncodeAll(body, out[:0])
				}
				b.ReportMetric(float64(len(out)+3+4)/float64(n), "B/event")
				b.ReportMetric(float64(encBytes), "enc-B")
			})
		}
	}
}

// BenchmarkDictionary measures what a zstd dictionary, trained from the first
// 2,000 events of a stream, would save on the stream's later batches, against
// the package's encoder without one, for the bench's events and for rounded
// ones. It is a measurement for the design (see docs/wire-format.md), not a
// feature: the format has no dictionaries.
func BenchmarkDictionary(b *testing.B) {
	for _, data := range []string{"bench", "rounded"} {
		rounded := data == "rounded"
		var samples [][]byte
		var history []byte
		for _, r := range makeRecords(2000, 0, rounded) {
			samples = append(samples, r.Data)
			history = append(history, r.Data...)
		}
		for _, size := range []int{16 << 10, 64 << 10} {
			// HashBytes 4 and the builder's default level made the best
			// dictionaries of those tried (4, 6, 8; fastest, best).
			trained, err := dict.BuildZstdDict(samples, dict.Options{MaxDictSize: size, HashBytes: 4, ZstdDictID: 1})
			if err != nil {
				b.Fatal(err)
			}
			raw := history[len(history)-min(size, len(history)):]
			dicts := []struct {
				name string
				opt  zstd.EOption
			}{
				{"trained", zstd.WithEncoderDict(trained)},
				{"raw", zstd.WithEncoderDictRaw(2, raw)},
			}
			for _, d := range dicts {
				enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstdLevel), zstd.WithEncoderCRC(false), d.opt)
				if err != nil {
					b.Fatal(err)
				}
				for _, n := range []int{10, 100, 1000} {
					// Later batches of the same stream: 10,000 events after training.
					var bodies [][]byte
					events := 0
					for first := 10_000; first < 20_000; first += n {
						body, err := appendEvents(nil, "bench", "01HZX3K9Q7", "sensors", makeRecords(n, first, rounded), true)
						if err != nil {
							b.Fatal(err)
						}
						bodies = append(bodies, body)
						events += n
					}
					b.Run(fmt.Sprintf("%s/%s-%dKiB/batch=%d", data, d.name, size>>10, n), func(b *testing.B) {
						var with, without int
						var out []byte
						for b.Loop() {
							with, without = 0, 0
							for _, body := range bodies {
								out = enc.EncodeAll(body, out[:0])
								with += len(out) + 3 + 4
								out = zstdEncoder().EncodeAll(body, out[:0])
								without += len(out) + 3 + 4
							}
						}
						b.ReportMetric(float64(without)/float64(events), "plain-B/event")
						b.ReportMetric(float64(with)/float64(events), "dict-B/event")
						b.ReportMetric(100*(1-float64(with)/float64(without)), "gain-%")
					})
				}
			}
		}
	}
}
