package source

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/tributary-edge/tributary/edge"

	"github.com/rs/zerolog"
)

// StdinSource reads NDJSON lines from In into stream "default". A line that is
// not one JSON object, or is over MaxEventBytes, is logged with its line number
// and skipped. Lines that arrive together are committed together.
type StdinSource struct {
	// Sink receives the events.
	Sink Sink
	// In is the input, usually os.Stdin.
	In io.Reader
	// Stream is the stream the events go to.
	Stream string
	// MaxEventBytes limits one event (edge.DefaultMaxEventBytes when not positive).
	MaxEventBytes int
	// BatchLines is the most lines committed together.
	BatchLines int
	// Now is the clock of events without a ts field.
	Now func() time.Time
	// Logger receives skipped lines and the end of the input.
	Logger zerolog.Logger

	stop  chan struct{}
	wg    sync.WaitGroup
	lines chan numberedLine
}

type numberedLine struct {
	n    int
	text []byte
	err  error // the line was over the limit
}

// NewStdinSource returns a source reading NDJSON from in into stream "default".
func NewStdinSource(sink Sink, in io.Reader) *StdinSource {
	return &StdinSource{Sink: sink, In: in, Stream: edge.DefaultStream, MaxEventBytes: edge.DefaultMaxEventBytes,
		BatchLines: 1000, Now: time.Now, Logger: zerolog.Nop()}
}

// Open starts reading.
func (s *StdinSource) Open(ctx context.Context) error {
	if s.Sink == nil || s.In == nil {
		return errors.New("open stdin source: needs a sink and an input")
	}
	if s.MaxEventBytes <= 0 {
		s.MaxEventBytes = edge.DefaultMaxEventBytes
	}
	if s.BatchLines <= 0 {
		s.BatchLines = 1000
	}
	log := s.Logger.With().Str("component", "source").Str("source", "stdin").Logger()
	s.stop = make(chan struct{})
	s.lines = make(chan numberedLine, s.BatchLines)
	// The reader is not waited for: a read from a terminal or pipe cannot be
	// interrupted, and it ends with the process.
	go s.read(log)
	s.wg.Add(1)
	go s.commit(log)
	log.Info().Str("stream", s.Stream).Msg("source started")
	return nil
}

// Close stops committing and waits; lines read but not committed are lost, as
// they would be with any pipe.
func (s *StdinSource) Close() error {
	if s.stop != nil {
		close(s.stop)
		s.wg.Wait()
		s.stop = nil
	}
	return nil
}

// read splits the input into lines and hands them over until EOF or Close.
func (s *StdinSource) read(log zerolog.Logger) {
	defer close(s.lines)
	lr := newLineReader(s.In, s.MaxEventBytes)
	for n := 1; ; n++ {
		text, err := lr.next()
		if err == io.EOF {
			log.Info().Int("lines", n-1).Msg("end of input")
			return
		}
		l := numberedLine{n: n, text: text}
		if errors.Is(err, edge.ErrEventTooLarge) {
			l.err = err
		} else if err != nil {
			log.Error().Err(err).Int("line", n).Msg("read input")
			return
		}
		select {
		case s.lines <- l:
		case <-s.stop:
			return
		}
	}
}

// commit takes the lines that are waiting, parses them and appends the good
// ones in one commit.
func (s *StdinSource) commit(log zerolog.Logger) {
	defer s.wg.Done()
	for {
		var batch []numberedLine
		select {
		case <-s.stop:
			return
		case l, ok := <-s.lines:
			if !ok {
				return
			}
			batch = append(batch, l)
		}
	more:
		for len(batch) < s.BatchLines {
			select {
			case l, ok := <-s.lines:
				if !ok {
					break more
				}
				batch = append(batch, l)
			default:
				break more
			}
		}
		in := make([]edge.Input, 0, len(batch))
		now := s.Now().UnixNano()
		for _, l := range batch {
			if l.err != nil {
				log.Warn().Int("line", l.n).Err(l.err).Msg("line skipped")
				continue
			}
			if len(bytes.TrimSpace(l.text)) == 0 {
				continue
			}
			ev, err := edge.ParseLine(l.text, now, s.MaxEventBytes)
			if err != nil {
				log.Warn().Int("line", l.n).Err(err).Msg("line skipped")
				continue
			}
			in = append(in, ev)
		}
		if len(in) == 0 {
			continue
		}
		appendRetry(s.stop, log, "input lines", func(ctx context.Context) error {
			_, _, err := s.Sink.Append(ctx, s.Stream, in)
			return err
		})
	}
}

// lineReader returns lines without their "\n" (or "\r\n"), refusing lines over a
// limit without holding them in memory.
type lineReader struct {
	r   *bufio.Reader
	max int
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next line. A line over the limit is read to its end and
// returned empty with an error wrapping edge.ErrEventTooLarge. At the end of the
// input a last line without a newline is returned, then io.EOF.
func (lr *lineReader) next() ([]byte, error) {
	var line []byte
	over := false
	for {
		frag, err := lr.r.ReadSlice('\n')
		if !over {
			if len(line)+len(frag) > lr.max+2 { // room for "\r\n"
				over, line = true, nil
			} else {
				line = append(line, frag...)
			}
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && len(line) == 0 && !over:
			return nil, io.EOF
		case err != nil && err != io.EOF:
			return nil, err
		}
		if over {
			return nil, errLineTooLong(lr.max)
		}
		return trimEOL(line), nil
	}
}

func errLineTooLong(max int) error {
	return fmt.Errorf("%w: line is over the %d byte limit", edge.ErrEventTooLarge, max)
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}
