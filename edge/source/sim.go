package source

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/tributary-edge/tributary/edge"

	"github.com/rs/zerolog"
)

// Simulated streams.
const (
	SimSensorsStream = "sensors"
	SimPowerStream   = "power"
)

// SimSites are the sites simulated sensors stand at.
var SimSites = []string{"north", "south", "east", "west"}

// SimSource writes synthetic sensor readings: every Interval one reading per
// sensor on stream "sensors" (temperature, humidity, site, gps {lat, lon},
// battery) and one meter reading on stream "power". The data is a pure function
// of Seed and the tick number; only the event times come from the clock.
type SimSource struct {
	// Sink receives the events.
	Sink Sink
	// Seed fixes the readings; 0 derives one from Node.
	Seed int64
	// Node seeds the readings when Seed is 0.
	Node string
	// Interval is the time between ticks.
	Interval time.Duration
	// Now is the clock of event times.
	Now func() time.Time
	// Logger receives failed appends.
	Logger zerolog.Logger

	stop chan struct{}
	wg   sync.WaitGroup
}

// NewSimSource returns a simulator for node with a tick every second.
func NewSimSource(sink Sink, node string) *SimSource {
	return &SimSource{Sink: sink, Node: node, Interval: time.Second, Now: time.Now, Logger: zerolog.Nop()}
}

// Open starts ticking.
func (s *SimSource) Open(ctx context.Context) error {
	if s.Sink == nil || s.Interval <= 0 {
		return errors.New("open sim source: needs a sink and a positive interval")
	}
	log := s.Logger.With().Str("component", "source").Str("source", "sim").Logger()
	gen := NewSimGenerator(s.seed())
	s.stop = make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		loop(s.stop, s.Interval, func() {
			now := s.Now().UnixNano()
			for _, b := range gen.Tick(now) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, _, err := s.Sink.Append(ctx, b.Stream, b.Events)
				cancel()
				if err != nil {
					log.Warn().Err(err).Str("stream", b.Stream).Msg("simulated readings not stored")
				}
			}
		})
	}()
	log.Info().Int64("seed", gen.seed).Dur("interval", s.Interval).Msg("source started")
	return nil
}

// Close stops ticking and waits.
func (s *SimSource) Close() error {
	if s.stop != nil {
		close(s.stop)
		s.wg.Wait()
		s.stop = nil
	}
	return nil
}

func (s *SimSource) seed() int64 {
	if s.Seed != 0 {
		return s.Seed
	}
	h := fnv.New64a()
	h.Write([]byte(s.Node))
	return int64(h.Sum64() >> 1)
}

// SimBatch is the events of one stream produced by one tick.
type SimBatch struct {
	Stream string
	Events []edge.Input
}

// SimGenerator makes the simulator's readings. It is deterministic: two
// generators with the same seed produce the same data, tick after tick.
type SimGenerator struct {
	seed    int64
	rng     *rand.Rand
	sensors []simSensor
	meter   simMeter
}

type simSensor struct {
	id             string
	site           string
	lat, lon       float64
	temp, humidity float64
	battery        float64
}

type simMeter struct {
	id      string
	site    string
	voltage float64
	current float64
}

// Base temperatures by site, so that sites differ in a way queries can see.
var simBaseTemp = map[string]float64{"north": 12, "south": 26, "east": 19, "west": 16}

// NewSimGenerator returns a generator for seed: three sensors and one meter at
// sites the seed chooses.
func NewSimGenerator(seed int64) *SimGenerator {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15))
	g := &SimGenerator{seed: seed, rng: rng}
	for i := range 3 {
		site := SimSites[rng.IntN(len(SimSites))]
		g.sensors = append(g.sensors, simSensor{
			id:       "s" + string(rune('1'+i)),
			site:     site,
			lat:      45 + rng.Float64()*10,
			lon:      5 + rng.Float64()*10,
			temp:     simBaseTemp[site] + rng.NormFloat64()*2,
			humidity: 40 + rng.Float64()*30,
			battery:  0.6 + rng.Float64()*0.4,
		})
	}
	g.meter = simMeter{id: "m1", site: SimSites[rng.IntN(len(SimSites))], voltage: 230, current: 3 + rng.Float64()*5}
	return g
}

// Tick advances every simulated device by one step and returns their readings,
// stamped with now (Unix nanoseconds).
func (g *SimGenerator) Tick(now int64) []SimBatch {
	sensors := make([]edge.Input, 0, len(g.sensors))
	for i := range g.sensors {
		s := &g.sensors[i]
		// A random walk pulled back to the site's base, with a rare heat spike.
		s.temp += (simBaseTemp[s.site]-s.temp)*0.1 + g.rng.NormFloat64()*0.5
		temp := s.temp
		if g.rng.IntN(50) == 0 {
			temp += 15 + g.rng.Float64()*10
		}
		s.humidity = clamp(s.humidity+g.rng.NormFloat64(), 5, 100)
		s.battery = math.Max(0, s.battery-0.0001)
		s.lat += g.rng.NormFloat64() * 0.00001
		s.lon += g.rng.NormFloat64() * 0.00001
		sensors = append(sensors, simInput(now, map[string]any{
			"sensor":      s.id,
			"site":        s.site,
			"temperature": round(temp, 2),
			"humidity":    round(s.humidity, 1),
			"battery":     round(s.battery, 4),
			"gps":         map[string]any{"lat": round(s.lat, 6), "lon": round(s.lon, 6)},
		}))
	}
	m := &g.meter
	m.voltage = clamp(230+g.rng.NormFloat64()*2, 200, 250)
	m.current = clamp(m.current+g.rng.NormFloat64()*0.3, 0, 32)
	power := []edge.Input{simInput(now, map[string]any{
		"meter":   m.id,
		"site":    m.site,
		"voltage": round(m.voltage, 1),
		"current": round(m.current, 2),
		"watts":   round(m.voltage*m.current, 1),
	})}
	return []SimBatch{{Stream: SimSensorsStream, Events: sensors}, {Stream: SimPowerStream, Events: power}}
}

func simInput(now int64, v map[string]any) edge.Input {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // maps of strings and finite numbers always marshal
	}
	return edge.Input{TS: now, Data: b}
}

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}

func clamp(v, lo, hi float64) float64 { return math.Min(hi, math.Max(lo, v)) }
