package source

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/tributary-edge/tributary/edge"

	"github.com/rs/zerolog"
)

// FileSource follows an NDJSON file into stream "default", like tail -F. Every
// commit saves the read offset in the same transaction as the events
// (AppendWithOffset), so after a restart it resumes exactly where the last
// commit ended. It survives rotation: when the path names a new file it finishes
// the old one (a last line without a newline counts as a line there) and starts
// the new one at its beginning; when the file shrinks (truncation) it starts
// again at the beginning. A last line without its newline waits for it. A line
// that is not one JSON object, or is over MaxEventBytes, is logged with its line
// number and skipped.
type FileSource struct {
	// Sink receives the events.
	Sink Sink
	// Path is the file to follow; it may not exist yet.
	Path string
	// Stream is the stream the events go to.
	Stream string
	// MaxEventBytes limits one event (edge.DefaultMaxEventBytes when not positive).
	MaxEventBytes int
	// Poll is how often the file is checked for new data, rotation and
	// truncation once everything has been read.
	Poll time.Duration
	// ChunkBytes is how much is read at once; the complete lines of one read are
	// committed together.
	ChunkBytes int
	// Now is the clock of events without a ts field.
	Now func() time.Time
	// Logger receives skipped lines, rotations and truncations.
	Logger zerolog.Logger

	log  zerolog.Logger
	stop chan struct{}
	wg   sync.WaitGroup
}

// NewFileSource returns a source following path into stream "default".
func NewFileSource(sink Sink, path string) *FileSource {
	return &FileSource{Sink: sink, Path: path, Stream: edge.DefaultStream, MaxEventBytes: edge.DefaultMaxEventBytes,
		Poll: 250 * time.Millisecond, ChunkBytes: 256 << 10, Now: time.Now, Logger: zerolog.Nop()}
}

// fileOffset is what a file source saves with each commit.
type fileOffset struct {
	Dev  uint64 `json:"dev"`
	Ino  uint64 `json:"ino"`
	Off  int64  `json:"off"`
	Line int    `json:"line"`
}

// OffsetKey returns the key under which the source saves its offset.
func (s *FileSource) OffsetKey() string { return "file:" + s.Path }

// Open starts following the file.
func (s *FileSource) Open(ctx context.Context) error {
	if s.Sink == nil || s.Path == "" || s.Poll <= 0 {
		return errors.New("open file source: needs a sink, a path and a positive poll interval")
	}
	if s.MaxEventBytes <= 0 {
		s.MaxEventBytes = edge.DefaultMaxEventBytes
	}
	if s.ChunkBytes < 4096 {
		s.ChunkBytes = 4096
	}
	s.log = s.Logger.With().Str("component", "source").Str("source", "file").Str("path", s.Path).Logger()
	s.stop = make(chan struct{})
	s.wg.Add(1)
	go s.run()
	s.log.Info().Str("stream", s.Stream).Msg("source started")
	return nil
}

// Close stops following and waits. What was committed is where the next Open
// resumes.
func (s *FileSource) Close() error {
	if s.stop != nil {
		close(s.stop)
		s.wg.Wait()
		s.stop = nil
	}
	return nil
}

// sleep waits d; it reports false when the source is closing.
func (s *FileSource) sleep(d time.Duration) bool {
	select {
	case <-s.stop:
		return false
	case <-time.After(d):
		return true
	}
}

func (s *FileSource) run() {
	defer s.wg.Done()
	saved, ok := s.loadOffset()
	if !ok {
		return
	}
	var fl *follower
	defer func() {
		if fl != nil {
			fl.f.Close()
		}
	}()
	waiting := false
	for {
		if fl == nil {
			var err error
			fl, err = s.openFollower(saved)
			if err != nil {
				if !waiting {
					s.log.Info().Err(err).Msg("waiting for the file")
					waiting = true
				}
				if !s.sleep(s.Poll) {
					return
				}
				continue
			}
			waiting = false
		}
		n, err := fl.readChunk()
		if err != nil {
			if errors.Is(err, errStopped) {
				return
			}
			s.log.Error().Err(err).Msg("read file")
			if !s.sleep(s.Poll) {
				return
			}
			continue
		}
		if n > 0 {
			continue
		}
		switch fl.check() {
		case fileRotated:
			if err := fl.finish(); err != nil {
				if errors.Is(err, errStopped) {
					return
				}
				s.log.Error().Err(err).Msg("finish the rotated file")
			}
			s.log.Info().Int("lines", fl.line).Msg("file rotated; following the new one from its beginning")
			fl.f.Close()
			fl, saved = nil, fileOffset{}
			continue
		case fileTruncated:
			s.log.Warn().Int64("size_was_at_least", fl.readOff).Msg("file truncated; reading it again from its beginning")
			if err := fl.rewind(); err != nil {
				s.log.Error().Err(err).Msg("rewind the truncated file")
				fl.f.Close()
				fl, saved = nil, fileOffset{}
			}
			continue
		}
		if !s.sleep(s.Poll) {
			return
		}
	}
}

// loadOffset reads the saved offset, retrying until it can or the source
// closes (ok false).
func (s *FileSource) loadOffset() (off fileOffset, ok bool) {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		b, err := s.Sink.Offset(ctx, s.OffsetKey())
		cancel()
		if err == nil {
			if len(b) > 0 {
				if err := json.Unmarshal(b, &off); err != nil {
					s.log.Error().Err(err).Msg("saved offset is unreadable; reading the file from its beginning")
					return fileOffset{}, true
				}
			}
			return off, true
		}
		s.log.Warn().Err(err).Msg("read saved offset")
		if !s.sleep(time.Second) {
			return off, false
		}
	}
}

var errStopped = errors.New("source closing")

// follower reads one open file.
type follower struct {
	s       *FileSource
	f       *os.File
	fi      os.FileInfo
	dev     uint64
	ino     uint64
	pos     int64  // offset just after the last line handled
	line    int    // lines handled
	partial []byte // bytes after pos that do not end in a newline yet
	over    bool   // the incomplete line is over the limit; its bytes are not kept
	readOff int64  // offset of the next read
	buf     []byte
}

// openFollower opens the file and places it at the saved offset when the saved
// offset belongs to this file and still fits in it, else at its beginning.
func (s *FileSource) openFollower(saved fileOffset) (*follower, error) {
	f, err := os.Open(s.Path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	fl := &follower{s: s, f: f, fi: fi, buf: make([]byte, s.ChunkBytes)}
	fl.dev, fl.ino = fileIdentity(fi)
	same := saved != (fileOffset{}) && saved.Ino == fl.ino && saved.Dev == fl.dev
	switch {
	case same && saved.Off <= fi.Size():
		if _, err := f.Seek(saved.Off, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
		fl.pos, fl.readOff, fl.line = saved.Off, saved.Off, saved.Line
		s.log.Info().Int64("offset", saved.Off).Int("line", saved.Line).Msg("resuming the file")
	case same:
		s.log.Warn().Int64("offset", saved.Off).Int64("size", fi.Size()).Msg("file is shorter than the saved offset; reading it from its beginning")
	case saved != (fileOffset{}):
		s.log.Warn().Msg("file was replaced since the last run; reading the new one from its beginning")
	}
	return fl, nil
}

// readChunk reads once, handles the complete lines and commits them with the
// new offset. It returns the number of bytes read; 0 means end of file.
func (fl *follower) readChunk() (int, error) {
	n, err := fl.f.Read(fl.buf)
	if n == 0 {
		if err == nil || err == io.EOF {
			return 0, nil
		}
		return 0, err
	}
	fl.readOff += int64(n)
	data := fl.buf[:n]
	var in []edge.Input
	start := fl.pos
	now := fl.s.Now().UnixNano()
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			fl.keepPartial(data)
			break
		}
		seg := data[:i]
		data = data[i+1:]
		text := seg
		if len(fl.partial) > 0 {
			text = append(fl.partial, seg...)
		}
		wasOver := fl.over || len(text) > fl.s.MaxEventBytes+1
		fl.partial, fl.over = nil, false
		fl.line++
		fl.pos = fl.readOff - int64(len(data))
		if ev, ok := fl.event(text, wasOver, now); ok {
			in = append(in, ev)
		}
	}
	if fl.pos == start {
		return n, nil
	}
	return n, fl.commit(in)
}

// keepPartial holds the start of a line that has no newline yet, or forgets it
// once it is over the limit.
func (fl *follower) keepPartial(data []byte) {
	if fl.over {
		return
	}
	fl.partial = append(fl.partial, data...)
	if len(fl.partial) > fl.s.MaxEventBytes+1 {
		fl.partial, fl.over = nil, true
	}
}

// event parses one line; bad lines are logged and give ok false.
func (fl *follower) event(text []byte, over bool, now int64) (edge.Input, bool) {
	if over {
		fl.s.log.Warn().Int("line", fl.line).Int("limit", fl.s.MaxEventBytes).Msg("line skipped: over the event size limit")
		return edge.Input{}, false
	}
	text = trimEOL(text)
	if len(bytes.TrimSpace(text)) == 0 {
		return edge.Input{}, false
	}
	ev, err := edge.ParseLine(text, now, fl.s.MaxEventBytes)
	if err != nil {
		fl.s.log.Warn().Int("line", fl.line).Err(err).Msg("line skipped")
		return edge.Input{}, false
	}
	return ev, true
}

// commit appends in with the offset at pos, retrying until it is stored or the
// source closes.
func (fl *follower) commit(in []edge.Input) error {
	off, err := json.Marshal(fileOffset{Dev: fl.dev, Ino: fl.ino, Off: fl.pos, Line: fl.line})
	if err != nil {
		return err
	}
	ok := appendRetry(fl.s.stop, fl.s.log, "file lines", func(ctx context.Context) error {
		_, _, err := fl.s.Sink.AppendWithOffset(ctx, fl.s.Stream, in, fl.s.OffsetKey(), off)
		return err
	})
	if !ok {
		return errStopped
	}
	return nil
}

// File states seen at the end of the data.
const (
	fileSame = iota
	fileRotated
	fileTruncated
)

// check compares the open file with what the path names now.
func (fl *follower) check() int {
	if cur, err := os.Stat(fl.s.Path); err == nil && !os.SameFile(cur, fl.fi) {
		return fileRotated
	}
	// A missing path is a rotation in progress: keep reading the old file.
	if fi, err := fl.f.Stat(); err == nil && fi.Size() < fl.readOff {
		return fileTruncated
	}
	return fileSame
}

// finish reads what is left of a rotated file and commits its last line even
// without a newline.
func (fl *follower) finish() error {
	for {
		n, err := fl.readChunk()
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
	}
	if len(fl.partial) == 0 && !fl.over {
		return nil
	}
	text, over := fl.partial, fl.over
	fl.partial, fl.over = nil, false
	fl.line++
	fl.pos = fl.readOff
	var in []edge.Input
	if ev, ok := fl.event(text, over, fl.s.Now().UnixNano()); ok {
		in = append(in, ev)
	}
	return fl.commit(in)
}

// rewind starts the file again from its beginning after a truncation.
func (fl *follower) rewind() error {
	if _, err := fl.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("seek: %w", err)
	}
	fi, err := fl.f.Stat()
	if err != nil {
		return err
	}
	fl.fi = fi
	fl.pos, fl.readOff, fl.line, fl.partial, fl.over = 0, 0, 0, nil, false
	return nil
}
